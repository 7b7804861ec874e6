//! STAND-IN for `cubecl-llvm` 0.11.3 -- NOT the real crate.
//!
//! fulmen's offline CUDA build patches this crate in place of the real
//! `cubecl-llvm`, whose build script downloads an LLVM bundle. It declares
//! exactly the items `cubecl-cuda` 0.11.3 names, with the shapes its use sites
//! need, and nothing that would need LLVM:
//!
//! - `nvptx::ptx_version::PtxVersion` (`compiler.rs`, `runtime.rs`, `compute/context.rs`)
//! - `shared::lowered_features::{GpuTarget, restrict_features}` (`runtime.rs`)
//! - `PlironCompiler`, `LlvmTarget`, `PlironOptions`, `PlironArtifact`,
//!   `NvptxModule` (`compiler.rs`)
//!
//! The LLVM/NVPTX compiler always fails, saying so. The build must make
//! CubeCL's C++/NVRTC compiler the default one (`cubecl/cuda-cpp`, which
//! enables `cubecl-cuda/cpp`); then cubecl-cuda never constructs
//! [`PlironCompiler`] and never calls [`restrict_features`].
//!
//! Written from cubecl-cuda's use sites and from the `Compiler` trait of
//! `cubecl-runtime` 0.11.3; no code is taken from the real crate.

#![forbid(unsafe_code)]

use cubecl_environment::backtrace::BackTrace;
use cubecl_runtime::compiler::{CompilationError, Compiler};
use cubecl_runtime::kernel::{BufferIOAttr, KernelDefinition};

/// What every compilation through this stand-in answers.
pub const NO_LLVM_MESSAGE: &str = "fulmen's offline CUDA build has no LLVM/NVPTX compiler; \
     CubeCL's C++/NVRTC compiler is used instead";

fn no_llvm() -> CompilationError {
    CompilationError::Generic {
        reason: NO_LLVM_MESSAGE.to_string(),
        backtrace: BackTrace::capture(),
    }
}

/// The NVPTX-specific items.
pub mod nvptx {
    /// The PTX ISA version an LLVM backend would emit for a driver.
    pub mod ptx_version {
        use core::fmt;

        /// Stands for "the PTX version the installed driver loads".
        ///
        /// This stand-in emits no PTX, so it keeps the driver version itself
        /// (as `cuDriverGetVersion` reports it, 12.8 being `12080`) instead of
        /// mapping it to a PTX ISA version. cubecl-cuda only stores it in its
        /// compilation options and, for its LLVM backend, formats it into a
        /// cache namespace, for which distinct drivers giving distinct values
        /// is all that matters.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct PtxVersion(u32);

        impl PtxVersion {
            /// `None` below CUDA 10.0 or for a nonsensical (negative) version,
            /// `Some` otherwise. Never panics: cubecl-cuda calls this for every
            /// device it initializes, whichever compiler is the default.
            pub fn for_driver(driver: i32) -> Option<Self> {
                if driver < 10000 {
                    None
                } else {
                    u32::try_from(driver).ok().map(Self)
                }
            }
        }

        impl fmt::Display for PtxVersion {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Not a real PTX target feature name; see the type's docs.
                write!(f, "driver{}", self.0)
            }
        }
    }
}

/// Items shared by the LLVM targets.
pub mod shared {
    /// Narrowing a device's advertised features to what the LLVM backend lowers.
    pub mod lowered_features {
        use cubecl_core::ir::DeviceProperties;

        /// The GPU target whose lowering the features would be narrowed for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum GpuTarget {
            Nvptx,
        }

        /// Leaves `props` as they are.
        ///
        /// cubecl-cuda calls this only when its default backend is the LLVM
        /// one. This stand-in's LLVM backend compiles nothing, so narrowing the
        /// advertisement would be pointless: every kernel fails with
        /// [`crate::NO_LLVM_MESSAGE`] anyway.
        pub fn restrict_features(props: &mut DeviceProperties, target: GpuTarget) {
            let _ = (props, target);
        }
    }
}

/// The targets the LLVM compiler could generate code for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlvmTarget {
    #[default]
    Cpu,
    Nvptx,
}

/// The LLVM compiler: every compilation fails with [`NO_LLVM_MESSAGE`].
#[derive(Clone, Debug, Default)]
pub struct PlironCompiler {
    pub target: LlvmTarget,
}

/// Options for [`PlironCompiler`]. The fields are the ones cubecl-cuda sets;
/// it fills the rest with `..Default::default()`, so none are needed here.
#[derive(Clone, Debug, Default)]
pub struct PlironOptions {
    /// AMDGPU architecture (cubecl-cuda passes `None`).
    pub arch: Option<cubecl_core::ir::amd::GfxArch>,
    /// NVPTX architecture.
    pub sm_arch: Option<cubecl_core::ir::nvidia::SmArch>,
    /// PTX version to emit.
    pub ptx_version: Option<nvptx::ptx_version::PtxVersion>,
    /// Whether scalars and static metadata travel in the parameter block.
    pub grid_constants: bool,
}

/// A compiled PTX module: the shape cubecl-cuda reads. This stand-in never
/// produces one.
#[derive(Clone, Debug)]
pub struct NvptxModule {
    /// NUL-terminated PTX assembly.
    pub ptx: Vec<core::ffi::c_char>,
    /// Kernel entry point symbol.
    pub entrypoint: String,
    /// IR for logging and cache keys.
    pub ir: String,
    /// Shared memory required per launch, in bytes.
    pub shared_memory_size: usize,
    /// Buffer access modes in binding order.
    pub io: Vec<BufferIOAttr>,
}

/// What [`PlironCompiler`] produces. `#[non_exhaustive]` because the real
/// crate has more variants, and cubecl-cuda matches it with a `_` arm.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PlironArtifact {
    NvptxCode(NvptxModule),
}

impl core::fmt::Display for PlironArtifact {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlironArtifact::NvptxCode(module) => f.write_str(&module.ir),
        }
    }
}

impl Compiler for PlironCompiler {
    type Representation = PlironArtifact;
    type CompilationOptions = PlironOptions;

    fn compile(
        &mut self,
        kernel: KernelDefinition,
        compilation_options: &Self::CompilationOptions,
    ) -> Result<Self::Representation, CompilationError> {
        let _ = (kernel, compilation_options);
        Err(no_llvm())
    }

    fn buffer_io(repr: &Self::Representation) -> Option<Vec<BufferIOAttr>> {
        match repr {
            PlironArtifact::NvptxCode(module) => Some(module.io.clone()),
        }
    }

    fn extension(&self) -> &'static str {
        match self.target {
            LlvmTarget::Cpu => "plir",
            LlvmTarget::Nvptx => "ll",
        }
    }

    fn lang_tag(&self) -> &'static str {
        match self.target {
            LlvmTarget::Cpu => "mlir",
            LlvmTarget::Nvptx => "llvm",
        }
    }
}
