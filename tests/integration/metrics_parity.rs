//! Streaming metrics against scikit-learn: tests/fixtures/metrics/sklearn.json is made by
//! generate.py next to it (pinned versions). Every case is streamed in uneven batches.

use fulmen::metrics::{Accuracy, Average, ConfusionMatrix, FBeta, Metric, MetricValue, Normalize, Precision, Recall, ZeroDivision};
use fulmen::prelude::*;
use fulmen::serde_json::Value;

const FIXTURE: &str = include_str!("../fixtures/metrics/sklearn.json");

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "nan" => f64::NAN,
        v => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6
}

/// Feeds a case to `metric` in batches of 7, 1, 13, 7, 1, 13, ...
fn stream(metric: &mut dyn Metric, case: &Value) -> MetricValue {
    let device = Device::flex();
    let classes = case["classes"].as_u64().unwrap() as usize;
    let scores: Vec<f32> = case["scores"].as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap().iter().map(|v| number(v) as f32)).collect();
    let targets: Vec<i64> = case["y_true"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let (mut start, sizes) = (0, [7usize, 1, 13]);
    for size in sizes.iter().cycle() {
        if start >= targets.len() {
            break;
        }
        let end = (start + size).min(targets.len());
        let n = end - start;
        let s = Tensor::<2>::from_data(fulmen::burn::tensor::TensorData::new(scores[start * classes..end * classes].to_vec(), [n, classes]), &device);
        let t = Tensor::<1, Int>::from_data(fulmen::burn::tensor::TensorData::new(targets[start..end].to_vec(), [n]), &device);
        metric.update(&s, &t).unwrap();
        start = end;
    }
    metric.compute().unwrap()
}

fn check(case: &Value, key: &str, metric: &mut dyn Metric) {
    let name = case["name"].as_str().unwrap();
    let want = &case["expected"][key];
    let got = stream(metric, case);
    match (got, want) {
        (MetricValue::Scalar(g), w) if !w.is_array() => assert!(close(g, number(w)), "{name} {key}: {g} vs {w}"),
        (MetricValue::PerClass(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{name} {key}");
            for (a, b) in g.iter().zip(w) {
                assert!(close(*a, number(b)), "{name} {key}: {g:?} vs {w:?}");
            }
        }
        (MetricValue::Matrix(g), Value::Array(w)) => {
            for (row, wrow) in g.iter().zip(w) {
                for (a, b) in row.iter().zip(wrow.as_array().unwrap()) {
                    assert!(close(*a, number(b)), "{name} {key}: {g:?} vs {w:?}");
                }
            }
        }
        (g, w) => panic!("{name} {key}: {g:?} vs {w}"),
    }
}

fn cases() -> Vec<Value> {
    let doc: Value = fulmen::serde_json::from_str(FIXTURE).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn precision_recall_and_f_beta_match_scikit_learn() {
    let averages = [(Average::Micro, "micro"), (Average::Macro, "macro"), (Average::Weighted, "weighted"), (Average::PerClass, "None")];
    let zero_divisions = [(ZeroDivision::Zero, "zero"), (ZeroDivision::One, "one"), (ZeroDivision::Nan, "nan")];
    let mut checked = 0;
    for case in cases() {
        let c = case["classes"].as_u64().unwrap() as usize;
        for (average, a) in averages {
            for (zd, z) in zero_divisions {
                check(&case, &format!("precision_{a}_{z}"), &mut Precision::new(c).average(average).zero_division(zd));
                check(&case, &format!("recall_{a}_{z}"), &mut Recall::new(c).average(average).zero_division(zd));
                for beta in [0.5, 1.0, 2.0] {
                    check(&case, &format!("f{beta:?}_{a}_{z}"), &mut FBeta::new(c, beta).average(average).zero_division(zd));
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 8 * 4 * 3 * 3);
}

#[test]
fn accuracy_and_confusion_matrices_match_scikit_learn() {
    for case in cases() {
        let c = case["classes"].as_u64().unwrap() as usize;
        check(&case, "accuracy", &mut Accuracy::new(c));
        check(&case, "accuracy_macro", &mut Accuracy::new(c).average(Average::Macro));
        for k in [2, 3] {
            // Not defined with tied scores: the fixture leaves those cases out.
            if k < c && case["expected"].get(format!("top{k}_accuracy")).is_some() {
                check(&case, &format!("top{k}_accuracy"), &mut Accuracy::new(c).top_k(k));
            }
        }
        for (normalize, key) in [(Normalize::None, "None"), (Normalize::True, "true"), (Normalize::Pred, "pred"), (Normalize::All, "all")] {
            check(&case, &format!("confusion_{key}"), &mut ConfusionMatrix::new(c).normalize(normalize));
        }
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let device = Device::flex();
    let scores = Tensor::<2>::from_floats([[0.1, 0.9], [0.8, 0.2]], &device);
    let mut f1 = fulmen::metrics::f1(3);
    let err = f1.update(&scores, &Tensor::<1, Int>::from_ints([0, 1], &device)).unwrap_err().to_string();
    assert!(err.contains("f1_macro") && err.contains("2 columns") && err.contains("3 classes"), "{err}");
    let mut f1 = fulmen::metrics::f1(2);
    let err = f1.update(&scores, &Tensor::<1, Int>::from_ints([0, 1, 1], &device)).unwrap_err().to_string();
    assert!(err.contains("2 rows of scores but 3 targets"), "{err}");
    f1.update(&scores, &Tensor::<1, Int>::from_ints([0, 7], &device)).unwrap();
    let err = f1.compute().unwrap_err().to_string();
    assert!(err.contains("label 7 in batch 0") && err.contains("outside 0..2"), "{err}");
    f1.reset();
    let err = f1.compute().unwrap_err().to_string();
    assert!(err.contains("no samples"), "{err}");
    let mut auroc = fulmen::metrics::Auroc::new(2);
    auroc.update(&Tensor::<2>::from_floats([[0.1, f32::NAN], [0.8, 0.2]], &device), &Tensor::<1, Int>::from_ints([0, 1], &device)).unwrap();
    let err = auroc.compute().unwrap_err().to_string();
    assert!(err.contains("auroc") && err.contains("NaN") && err.contains("finite"), "{err}");
    let mut binned = fulmen::metrics::PrecisionRecallCurve::binned(2, 5);
    binned.update(&Tensor::<2>::from_floats([[1.5, -0.5], [0.8, 0.2]], &device), &Tensor::<1, Int>::from_ints([0, 1], &device)).unwrap();
    let err = binned.compute().unwrap_err().to_string();
    assert!(err.contains("-0.5") && err.contains("probabilities in [0, 1]") && err.contains("softmax"), "{err}");
    let err = Accuracy::new(2).top_k(3).update(&scores, &Tensor::<1, Int>::from_ints([0, 1], &device)).unwrap_err().to_string();
    assert!(err.contains("top_k = 3") && err.contains("only 2 classes"), "{err}");
}

/// A linear classifier over 3 classes whose generated steps log streaming metrics.
#[derive(Module, LightningModule, Debug)]
#[lightning(metrics(accuracy, f1(average = macro), precision(average = weighted), accuracy(top_k = 2), auroc), optimizer = sgd(lr = 0.5))]
pub struct Lin {
    #[layer(linear(2 -> 3))]
    fc: Linear,
}

#[test]
fn derived_steps_log_metrics_computed_over_the_epoch() {
    use crate::probe::PointsData;

    let mut trainer = Trainer::builder().max_epochs(1).no_logger().enable_progress_bar(false).enable_model_summary(false).build().unwrap();
    let mut data = PointsData { train: 32, val: 23, batch: 5 };
    let model = trainer.fit(Lin::new(trainer.device()).unwrap(), &mut data).unwrap();
    assert!(trainer.callback_metrics().contains_key("train_f1_macro"), "{:?}", trainer.callback_metrics());
    let logged = trainer.validate(&model, &mut data).unwrap();

    let mut references: Vec<(&str, Box<dyn Metric>)> = vec![
        ("val_f1_macro", Box::new(fulmen::metrics::f1(3))),
        ("val_precision_weighted", Box::new(Precision::new(3).average(Average::Weighted))),
        ("val_top2_accuracy", Box::new(Accuracy::new(3).top_k(2))),
        ("val_auroc", Box::new(fulmen::metrics::Auroc::new(3))),
    ];
    let loader = fulmen::DataModule::val_dataloader(&data).unwrap().unwrap();
    for batch in loader.iter() {
        let batch = batch.unwrap();
        let scores = model.forward(batch.inputs);
        for (_, metric) in references.iter_mut() {
            metric.update(&scores, &batch.targets).unwrap();
        }
    }
    for (name, metric) in references {
        let want = metric.compute().unwrap().scalar().unwrap();
        assert!(close(logged[name], want), "{name}: {} vs {want}", logged[name]);
    }
    assert!(logged.contains_key("val_acc"), "the batch-mean accuracy stays: {logged:?}");
}

/// Feeds a case's probabilities (not its scores) in uneven batches.
fn stream_probs(case: &Value, mut feed: impl FnMut(&Tensor<2>, &Tensor<1, Int>)) {
    let device = Device::flex();
    let classes = case["classes"].as_u64().unwrap() as usize;
    let probs: Vec<f32> = case["probs"].as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap().iter().map(|v| number(v) as f32)).collect();
    let targets: Vec<i64> = case["y_true"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    for (i, chunk) in targets.chunks(9).enumerate() {
        let n = chunk.len();
        let start = i * 9;
        let s = Tensor::<2>::from_data(fulmen::burn::tensor::TensorData::new(probs[start * classes..(start + n) * classes].to_vec(), [n, classes]), &device);
        let t = Tensor::<1, Int>::from_data(fulmen::burn::tensor::TensorData::new(chunk.to_vec(), [n]), &device);
        feed(&s, &t);
    }
}

fn compare(name: &str, key: &str, got: MetricValue, want: &Value) {
    match (got, want) {
        (MetricValue::Scalar(g), w) => assert!(close(g, number(w)), "{name} {key}: {g} vs {w}"),
        (MetricValue::PerClass(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len());
            for (a, b) in g.iter().zip(w) {
                assert!(close(*a, number(b)), "{name} {key}: {g:?} vs {w:?}");
            }
        }
        (g, w) => panic!("{name} {key}: {g:?} vs {w}"),
    }
}

#[test]
fn auroc_average_precision_and_pr_curves_match_scikit_learn() {
    use fulmen::metrics::{Auroc, AveragePrecision, PrecisionRecallCurve};
    let mut checked = 0;
    for case in cases() {
        let expected = &case["expected"];
        if expected.get("auroc_macro").is_none() {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let c = case["classes"].as_u64().unwrap() as usize;
        let averages: &[(Average, &str)] = if c == 2 {
            &[(Average::Macro, "macro"), (Average::PerClass, "None")]
        } else {
            &[(Average::Macro, "macro"), (Average::Weighted, "weighted"), (Average::Micro, "micro"), (Average::PerClass, "None")]
        };
        for &(average, a) in averages {
            let mut auroc = Auroc::new(c).average(average);
            let mut ap = AveragePrecision::new(c).average(average);
            stream_probs(&case, |s, t| {
                auroc.update(s, t).unwrap();
                ap.update(s, t).unwrap();
            });
            compare(name, &format!("auroc_{a}"), auroc.compute().unwrap(), &expected[format!("auroc_{a}")]);
            compare(name, &format!("average_precision_{a}"), ap.compute().unwrap(), &expected[format!("average_precision_{a}")]);
        }
        for (mut curve, key) in [(PrecisionRecallCurve::new(c), "pr_curves"), (PrecisionRecallCurve::binned(c, 9), "binned_pr_curves_9")] {
            stream_probs(&case, |s, t| curve.update(s, t).unwrap());
            for (class, (got, want)) in curve.compute().unwrap().iter().zip(expected[key].as_array().unwrap()).enumerate() {
                for (index, values) in [&got.precision, &got.recall, &got.thresholds].into_iter().enumerate() {
                    let want: Vec<f64> = want[index].as_array().unwrap().iter().map(number).collect();
                    assert_eq!(values.len(), want.len(), "{name} {key} class {class} field {index}");
                    for (a, b) in values.iter().zip(&want) {
                        // Exact thresholds are the f32 scores themselves.
                        assert!((a - b).abs() <= 1e-6, "{name} {key} class {class} field {index}: {values:?} vs {want:?}");
                    }
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 6, "random, imbalanced, binary, perfect, ties, binary_ties");
}

#[test]
fn a_class_absent_from_the_targets_has_average_precision_0_in_the_macro_mean() {
    use fulmen::metrics::AveragePrecision;
    let mut checked = 0;
    for case in cases() {
        let expected = &case["expected"];
        let Some(macro_value) = expected.get("average_precision_absent_macro") else { continue };
        let name = case["name"].as_str().unwrap();
        let c = case["classes"].as_u64().unwrap() as usize;
        for (average, want) in [(Average::Macro, macro_value), (Average::PerClass, &expected["average_precision_absent_None"])] {
            let mut ap = AveragePrecision::new(c).average(average);
            stream_probs(&case, |s, t| ap.update(s, t).unwrap());
            compare(name, "average_precision_absent", ap.compute().unwrap(), want);
        }
        checked += 1;
    }
    assert_eq!(checked, 2, "missing_classes, single_class");
}

/// The ten metrics, over 3 classes (probabilities expected only by the binned curve).
fn all_metrics() -> Vec<Box<dyn Metric>> {
    use fulmen::metrics::{Auroc, AveragePrecision, PrecisionRecallCurve};
    vec![
        Box::new(Accuracy::new(3)),
        Box::new(Accuracy::new(3).average(Average::Macro)),
        Box::new(Accuracy::new(3).top_k(2)),
        Box::new(Precision::new(3)),
        Box::new(Recall::new(3)),
        Box::new(fulmen::metrics::f1(3)),
        Box::new(ConfusionMatrix::new(3)),
        Box::new(Auroc::new(3)),
        Box::new(AveragePrecision::new(3)),
        Box::new(PrecisionRecallCurve::new(3)),
        Box::new(PrecisionRecallCurve::binned(3, 5)),
    ]
}

fn batch(scores: &[[f32; 3]], targets: &[i64]) -> (Tensor<2>, Tensor<1, Int>) {
    let device = Device::flex();
    let flat: Vec<f32> = scores.iter().flatten().copied().collect();
    let scores = Tensor::<2>::from_data(fulmen::burn::tensor::TensorData::new(flat, [targets.len(), 3]), &device);
    (scores, Tensor::<1, Int>::from_data(fulmen::burn::tensor::TensorData::new(targets.to_vec(), [targets.len()]), &device))
}

const GOOD: [[f32; 3]; 4] = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1]];

#[test]
fn an_empty_batch_adds_nothing_to_any_metric() {
    let (empty_scores, empty_targets) = batch(&[], &[]);
    let (scores, targets) = batch(&GOOD, &[0, 1, 2, 1]);
    for (mut with_empty, mut plain) in all_metrics().into_iter().zip(all_metrics()) {
        with_empty.update(&empty_scores, &empty_targets).unwrap_or_else(|e| panic!("{}: {e}", with_empty.name()));
        with_empty.update(&scores, &targets).unwrap();
        with_empty.update(&empty_scores, &empty_targets).unwrap();
        plain.update(&scores, &targets).unwrap();
        assert_eq!(with_empty.compute().unwrap(), plain.compute().unwrap(), "{}", plain.name());
        // Only empty batches: no samples, an error rather than a panic.
        let mut only_empty = all_metrics().into_iter().find(|m| m.name() == plain.name()).unwrap();
        only_empty.update(&empty_scores, &empty_targets).unwrap();
        let err = only_empty.compute().unwrap_err().to_string();
        assert!(err.contains("no samples"), "{}: {err}", plain.name());
    }
}

#[test]
fn non_finite_scores_and_labels_out_of_range_name_their_batch_in_every_metric() {
    let (scores, targets) = batch(&GOOD, &[0, 1, 2, 1]);
    for (bad, what) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let mut poisoned = GOOD;
        // A NaN or inf that would win the arg-max: silently "correct" before the check.
        poisoned[2][2] = bad;
        let (bad_scores, _) = batch(&poisoned, &[0, 1, 2, 1]);
        for mut metric in all_metrics() {
            metric.update(&scores, &targets).unwrap();
            metric.update(&scores, &targets).unwrap();
            metric.update(&bad_scores, &targets).unwrap();
            let err = metric.compute().unwrap_err().to_string();
            assert!(err.contains(&metric.name()) && err.contains("batch 2"), "{what}: {err}");
            assert!(err.contains("NaN") || err.contains("inf"), "{what}: {err}");
        }
    }
    let (_, bad_targets) = batch(&GOOD, &[0, 1, 9, 1]);
    for mut metric in all_metrics() {
        metric.update(&scores, &targets).unwrap();
        metric.update(&scores, &bad_targets).unwrap();
        metric.update(&scores, &targets).unwrap();
        let err = metric.compute().unwrap_err().to_string();
        assert!(err.contains("label 9 in batch 1") && err.contains("outside 0..3"), "{}: {err}", metric.name());
    }
}

#[test]
fn the_batch_accuracy_of_non_finite_scores_is_nan() {
    let (scores, targets) = batch(&GOOD, &[0, 1, 2, 1]);
    assert_eq!(fulmen::metrics::accuracy(scores, targets.clone()).into_scalar::<f32>(), 0.75);
    let mut poisoned = GOOD;
    poisoned[0][1] = f32::NAN;
    let (scores, _) = batch(&poisoned, &[0, 1, 2, 1]);
    assert!(fulmen::metrics::accuracy(scores, targets).into_scalar::<f32>().is_nan());
}
