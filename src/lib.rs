pub use fulmen_runtime::*;
