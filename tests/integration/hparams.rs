//! `#[hyperparameters]`: constructors, defaults, YAML round trips and validation errors.

use fulmen::Hyperparameters;

use crate::seed_cnn::SeedConfig;

#[test]
fn new_takes_required_fields_and_with_sets_defaulted_ones() {
    let c = SeedConfig::new([3, 32, 32], 10);
    assert_eq!(c.learning_rate, 2e-4);
    assert_eq!(c.with_learning_rate(1e-3).learning_rate, 1e-3);
}

#[test]
fn yaml_round_trip_keeps_every_field() {
    let c = SeedConfig::new([1, 28, 28], 7).with_learning_rate(3e-3);
    let yaml = fulmen::hparams::to_yaml(&c.to_value().unwrap()).unwrap();
    assert!(yaml.contains("learning_rate: 0.003"), "{yaml}");
    let back = SeedConfig::from_yaml_str(&yaml).unwrap();
    assert_eq!((back.input_shape, back.num_classes, back.learning_rate), ([1, 28, 28], 7, 3e-3));
}

#[test]
fn omitted_defaulted_fields_take_their_defaults() {
    let c = SeedConfig::from_yaml_str("input_shape: [3, 32, 32]\nnum_classes: 10\n").unwrap();
    assert_eq!(c.learning_rate, 2e-4);
}

#[test]
fn invalid_values_name_the_field_the_value_and_the_range() {
    let err = SeedConfig::from_yaml_str("input_shape: [3, 32, 32]\nnum_classes: 10\nlearning_rate: 5.0\n").unwrap_err().to_string();
    assert!(err.contains("learning_rate") && err.contains('5') && err.contains("1e-6..=1.0"), "{err}");
    let err = SeedConfig::new([3, 32, 32], 10).with_learning_rate(f64::NAN).validate().unwrap_err().to_string();
    assert!(err.contains("finite"), "{err}");
    let err = SeedConfig::from_yaml_str("input_shape: [3, 32, 32]\nnum_classes: 10\nlearnig_rate: 0.1\n").unwrap_err().to_string();
    assert!(err.contains("learnig_rate"), "{err}");
    let err = SeedConfig::from_yaml_str("num_classes: 10\n").unwrap_err().to_string();
    assert!(err.contains("input_shape"), "{err}");
}
