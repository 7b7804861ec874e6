//! `ImageFolderDataModule` on folders of generated PNG and JPEG files: a small CNN learns the
//! classes, images are resized and centre-cropped as torchvision's `Resize` + `CenterCrop`, and
//! a folder that is not one (an empty class, a corrupt file, a stray file) is an error naming
//! the path.

use std::path::Path;

use fulmen::prelude::*;

use crate::probe::temp_dir;

/// Hyperparameters of [`Tiny`].
#[hyperparameters]
pub struct TinyConfig {
    /// Classes.
    #[hparam(default = 3)]
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = TinyConfig, input_shape = [3, 16, 16], loss = cross_entropy, metrics(accuracy), optimizer = adam(lr = 0.01))]
pub struct Tiny {
    #[layer(conv2d(3 -> 8, kernel = 3), relu, max_pool(2))]
    conv: Conv2d,
    #[layer(linear(auto -> num_classes))]
    fc: Linear,
    #[module(skip)]
    hparams: TinyConfig,
}

/// An RGB image of `w × h` filled with `rgb`, plus a little seeded noise.
fn picture(w: u32, h: u32, rgb: [u8; 3], seed: u64) -> image::RgbImage {
    let mut rng = fulmen::rng::SplitMix64::new(seed);
    image::RgbImage::from_fn(w, h, |_, _| image::Rgb(rgb.map(|c| c.saturating_add(rng.below(20) as u8))))
}

/// `root/<class>/` with `n` images per class: red, green and blue, of varying sizes, PNG and JPEG.
pub(crate) fn write_folder(root: &Path, n: usize) {
    let colours = [("blue", [20, 20, 200]), ("green", [20, 200, 20]), ("red", [200, 20, 20])];
    for (class, (name, rgb)) in colours.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            let image = picture(16 + (i % 5) as u32 * 7, 16 + (i % 3) as u32 * 11, *rgb, (class * 1000 + i) as u64);
            let file = if i % 4 == 0 { dir.join(format!("{i}.jpg")) } else { dir.join(format!("{i}.png")) };
            image.save(&file).unwrap();
        }
    }
}

#[test]
fn a_cnn_learns_the_classes_of_an_image_folder() {
    let root = temp_dir("image-folder");
    write_folder(&root.join("train"), 30);
    write_folder(&root.join("test"), 6);
    let mut dm = ImageFolderDataModule::new(root.join("train")).test_dir(root.join("test")).image_size(16).batch_size(8).seed(3);
    let mut trainer = Trainer::builder()
        .accelerator(Accelerator::Cpu)
        .seed(1)
        .max_epochs(4)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .no_logger()
        .build()
        .unwrap();
    let model = Tiny::new(TinyConfig::new(), trainer.device()).unwrap();
    let model = trainer.fit(model, &mut dm).unwrap();
    assert_eq!(dm.classes().unwrap(), ["blue", "green", "red"], "classes by sorted folder name");
    assert_eq!(trainer.state().global_step, 4 * 9, "72 of 90 images train (a fifth validates), 9 batches of 8");
    let metrics = trainer.test(&model, &mut dm).unwrap();
    assert!(metrics["test_acc"] > 0.9, "{metrics:?}");
    let _ = std::fs::remove_dir_all(root);
}

/// A 4 × 2 image to 2 × 2: the shorter side is already 2, so the centre crop keeps columns 1
/// and 2.
#[test]
fn images_are_resized_and_centre_cropped_as_torchvision_does() {
    let root = temp_dir("image-folder-crop");
    let dir = root.join("only");
    std::fs::create_dir_all(&dir).unwrap();
    let wide = image::RgbImage::from_fn(4, 2, |x, y| image::Rgb([x as u8 * 10, y as u8 * 100, 7]));
    wide.save(dir.join("a.png")).unwrap();
    let mut dm = ImageFolderDataModule::new(&root).image_size(2).val_fraction(0.0).num_workers(0);
    dm.setup(SetupStage::Fit).unwrap();
    let batch = dm.train_dataloader().unwrap().iter().next().unwrap().unwrap();
    let pixels: Vec<f32> = batch.inputs.into_data().convert::<f32>().iter::<f32>().collect();
    // Normalized with 0.5/0.5: back to bytes.
    let bytes: Vec<u8> = pixels.iter().map(|v| ((v * 0.5 + 0.5) * 255.0).round() as u8).collect();
    assert_eq!(&bytes[..4], [10, 20, 10, 20], "red: columns 1 and 2 of each row");
    assert_eq!(&bytes[4..8], [0, 0, 100, 100], "green: the two rows");
    assert_eq!(&bytes[8..], [7, 7, 7, 7], "blue");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn what_is_not_an_image_folder_is_an_error_naming_the_path() {
    let setup = |root: &Path| ImageFolderDataModule::new(root).setup(SetupStage::Fit).unwrap_err().to_string();
    let root = temp_dir("image-folder-bad");
    write_folder(&root, 2);
    std::fs::write(root.join("red/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = setup(&root);
    assert!(err.contains("red/broken.png") && err.contains("cannot be read as an image"), "{err}");
    std::fs::remove_file(root.join("red/broken.png")).unwrap();
    std::fs::write(root.join("green/notes.txt"), "my notes").unwrap();
    let err = setup(&root);
    assert!(err.contains("green/notes.txt") && err.contains("not a PNG or JPEG"), "{err}");
    std::fs::remove_file(root.join("green/notes.txt")).unwrap();
    std::fs::create_dir_all(root.join("yellow")).unwrap();
    let err = setup(&root);
    assert!(err.contains("yellow") && err.contains("is empty"), "{err}");
    std::fs::remove_dir(root.join("yellow")).unwrap();
    std::fs::write(root.join("labels.csv"), "x").unwrap();
    let err = setup(&root);
    assert!(err.contains("labels.csv") && err.contains("beside its class folders"), "{err}");
    let err = setup(&root.join("missing"));
    assert!(err.contains("missing") && err.contains("cannot read the image folder"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}
