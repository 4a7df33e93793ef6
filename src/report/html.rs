//! The report as one self-contained HTML page: summary marks, tables and inline SVG plots
//! drawn with `plotters`. Nothing is fetched when the page is viewed.
//!
//! A small inline script counts the drawn plots and any script errors into attributes of
//! `<body>` (`data-plots`, `data-plots-drawn`, `data-errors`), which the headless-browser test
//! reads back.

use std::fmt::Write as _;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use polars::prelude::{DataType, TimeUnit};

use super::Report;
use super::fidelity::{min_max, sorted_present};
use super::prepare::{Column, NULL, Tables, Values};
use crate::gan::train::EpochMetrics;

/// Categories drawn per bar chart.
const BAR_LEVELS: usize = 20;
/// Bins of each histogram.
const HISTOGRAM_BINS: usize = 40;
const REAL: RGBColor = RGBColor(31, 119, 180);
const SYNTHETIC: RGBColor = RGBColor(255, 127, 14);

type Plot = Result<String, Box<dyn std::error::Error>>;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn number(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "–".into(),
    }
}

fn short(label: &str) -> String {
    if label.chars().count() > 14 {
        format!("{}…", label.chars().take(13).collect::<String>())
    } else {
        label.to_owned()
    }
}

/// Draws into an SVG string of the given size.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Box<dyn std::error::Error>>,
) -> Plot {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(out)
}

/// The legend box of the chart's series, in its upper right corner.
fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<(), Box<dyn std::error::Error>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// Overlaid translucent histograms of equal bins starting at `low`; empty series are skipped.
fn histograms<'a, const N: usize>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    low: f64,
    width: f64,
    series: [(&[f64], RGBColor, &str); N],
) -> Result<(), Box<dyn std::error::Error>> {
    for (bins, color, name) in series {
        if bins.iter().all(|&v| v == 0.0) {
            continue;
        }
        chart
            .draw_series(bins.iter().enumerate().map(|(i, &v)| {
                let left = low + i as f64 * width;
                Rectangle::new([(left, 0.0), (left + width, v)], color.mix(0.45).filled())
            }))?
            .label(name)
            .legend(move |point| swatch(point, color.mix(0.45)));
    }
    Ok(())
}

/// A filled square for a legend entry at `(x, y)`.
fn swatch((x, y): (i32, i32), color: RGBAColor) -> Rectangle<(i32, i32)> {
    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
}

/// An axis label: whole numbers for large values, three decimals for small ones.
fn axis_number(v: f64) -> String {
    match v.abs() {
        a if a >= 1000.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// Shares of `values` in `bins` equal bins over `[low, high]`.
fn binned(values: &[f64], low: f64, high: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0.0; bins];
    let width = (high - low) / bins as f64;
    let mut total = 0.0;
    for &v in values.iter().filter(|v| !v.is_nan()) {
        let bin = if width > 0.0 {
            ((v - low) / width).floor() as isize
        } else {
            0
        };
        if (0..bins as isize).contains(&bin) || v == high {
            counts[(bin.max(0) as usize).min(bins - 1)] += 1.0;
        }
        total += 1.0;
    }
    if total > 0.0 {
        counts.iter_mut().for_each(|c| *c /= total);
    }
    counts
}

/// Overlaid histograms (numbers) or share-over-time lines (datetimes) of real and synthetic
/// values.
fn numeric_plot(column: &Column, real: &[f64], synthetic: &[f64]) -> Plot {
    // The central 99% of the real values, so that a long tail does not squash the plot.
    let sorted = sorted_present(real);
    if sorted.is_empty() {
        return Ok(String::new());
    }
    let quantile = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (mut low, mut high) = (quantile(0.005), quantile(0.995));
    if low == high {
        (low, high) = (sorted[0], sorted[sorted.len() - 1]);
    }
    let clipped = low > sorted[0] || high < sorted[sorted.len() - 1];
    let caption = if clipped {
        format!("{} (central 99% of real values)", column.name())
    } else {
        column.name().to_owned()
    };
    let (low, high) = if low == high {
        (low - 0.5, high + 0.5)
    } else {
        (low, high)
    };
    let real_bins = binned(real, low, high, HISTOGRAM_BINS);
    let synthetic_bins = binned(synthetic, low, high, HISTOGRAM_BINS);
    let top = real_bins
        .iter()
        .chain(&synthetic_bins)
        .copied()
        .fold(0.0, f64::max)
        * 1.1
        + 1e-9;
    let width = (high - low) / HISTOGRAM_BINS as f64;
    let time_unit = match column.spec.polars_dtype() {
        Ok(DataType::Date) => Some(86_400.0),
        Ok(DataType::Datetime(unit, _)) => Some(match unit {
            TimeUnit::Milliseconds => 1e-3,
            TimeUnit::Microseconds => 1e-6,
            TimeUnit::Nanoseconds => 1e-9,
        }),
        _ => None,
    };
    svg((460, 260), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&caption, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(low..high, 0.0..top)?;
        let format_x = |v: &f64| match time_unit {
            Some(seconds) => chrono::DateTime::from_timestamp((v * seconds) as i64, 0)
                .map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string()),
            None => axis_number(*v),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(4)
            .y_labels(4)
            .x_label_formatter(&format_x)
            .y_desc("share of rows")
            .draw()?;
        let centre = |i: usize| low + (i as f64 + 0.5) * width;
        if time_unit.is_some() {
            for (bins, color, name) in [
                (&real_bins, REAL, "real"),
                (&synthetic_bins, SYNTHETIC, "synthetic"),
            ] {
                chart
                    .draw_series(LineSeries::new(
                        bins.iter().enumerate().map(|(i, &v)| (centre(i), v)),
                        color.stroke_width(2),
                    ))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                    });
            }
        } else {
            histograms(
                &mut chart,
                low,
                width,
                [
                    (&real_bins[..], REAL, "real"),
                    (&synthetic_bins[..], SYNTHETIC, "synthetic"),
                ],
            )?;
        }
        legend(&mut chart)?;
        Ok(())
    })
}

/// Side-by-side bars of the most frequent real categories.
fn category_plot(column: &Column, real: &[u32], synthetic: &[u32]) -> Plot {
    let shares = |codes: &[u32]| {
        let mut counts = vec![0.0; column.levels.len()];
        let present = codes.iter().filter(|&&c| c != NULL).count().max(1) as f64;
        for &code in codes.iter().filter(|&&c| c != NULL) {
            counts[code as usize] += 1.0 / present;
        }
        counts
    };
    let (real_shares, synthetic_shares) = (shares(real), shares(synthetic));
    let shown = column.levels.len().min(BAR_LEVELS);
    let top = real_shares
        .iter()
        .chain(&synthetic_shares)
        .take(column.levels.len())
        .copied()
        .fold(0.0, f64::max)
        * 1.1
        + 1e-9;
    let levels = &column.levels;
    svg((460, 260), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(column.name(), ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d((0..shown.max(1) - 1).into_segmented(), 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .y_labels(4)
            .x_labels(shown.max(1))
            .x_label_formatter(&|value| match value {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    levels.get(*i).map_or_else(String::new, |l| short(l))
                }
                SegmentValue::Last => String::new(),
            })
            .x_label_style(("sans-serif", 10))
            .y_desc("share of rows")
            .draw()?;
        // Each category's segment holds the real bar on its left half, the synthetic on its right.
        let (plot_width, _) = chart.plotting_area().dim_in_pixel();
        let half = plot_width / (2 * shown.max(1) as u32);
        let gap = (half / 6).max(1);
        for (shares, color, name, left) in [
            (&real_shares, REAL, "real", true),
            (&synthetic_shares, SYNTHETIC, "synthetic", false),
        ] {
            chart
                .draw_series((0..shown).map(|i| {
                    let mut bar = Rectangle::new(
                        [
                            (SegmentValue::Exact(i), 0.0),
                            (SegmentValue::Exact(i + 1), shares[i]),
                        ],
                        color.mix(0.8).filled(),
                    );
                    if left {
                        bar.set_margin(0, 0, gap, half);
                    } else {
                        bar.set_margin(0, 0, half, gap);
                    }
                    bar
                }))?
                .label(name)
                .legend(move |point| swatch(point, color.mix(0.8)));
        }
        legend(&mut chart)?;
        Ok(())
    })
}

/// Blue (−1) to white (0) to red (+1).
fn diverging(value: f64) -> RGBColor {
    let v = if value.is_finite() {
        value.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let fade = |channel: u8, amount: f64| (255.0 - (255.0 - channel as f64) * amount) as u8;
    if v >= 0.0 {
        RGBColor(fade(178, v), fade(24, v), fade(43, v))
    } else {
        RGBColor(fade(33, -v), fade(102, -v), fade(172, -v))
    }
}

fn heatmap(title: &str, names: &[String], matrix: &[Vec<f64>]) -> Plot {
    let n = names.len();
    let size = (80 + 26 * n as u32).clamp(260, 560);
    svg((size + 40, size), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(70)
            .y_label_area_size(90)
            .build_cartesian_2d(
                (0..n.max(1) - 1).into_segmented(),
                (0..n.max(1) - 1).into_segmented(),
            )?;
        let label = |value: &SegmentValue<usize>| match value {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i).map_or_else(String::new, |l| short(l))
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&label)
            .y_label_formatter(&label)
            .x_label_style(
                ("sans-serif", 10)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            )
            .y_label_style(("sans-serif", 10))
            .draw()?;
        chart.draw_series(
            (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| {
                    Rectangle::new(
                        [
                            (SegmentValue::Exact(i), SegmentValue::Exact(j)),
                            (SegmentValue::Exact(i + 1), SegmentValue::Exact(j + 1)),
                        ],
                        diverging(matrix[i][j]).filled(),
                    )
                }),
        )?;
        Ok(())
    })
}

fn distance_plot(synthetic: &[f32], holdout: &[f32]) -> Plot {
    let synthetic: Vec<f64> = synthetic.iter().map(|&d| d as f64).collect();
    let holdout: Vec<f64> = holdout.iter().map(|&d| d as f64).collect();
    let Some((_, high)) = min_max(&[synthetic.clone(), holdout.clone()].concat()) else {
        return Ok(String::new());
    };
    let high = high.max(1e-6);
    let bins = 40;
    let width = high / bins as f64;
    let (s, h) = (
        binned(&synthetic, 0.0, high, bins),
        binned(&holdout, 0.0, high, bins),
    );
    let top = s.iter().chain(&h).copied().fold(0.0, f64::max) * 1.1 + 1e-9;
    svg((560, 280), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Distance to the closest training row", ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..high, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("distance")
            .y_desc("share of rows")
            .draw()?;
        histograms(
            &mut chart,
            0.0,
            width,
            [
                (&s[..], SYNTHETIC, "synthetic rows"),
                (&h[..], REAL, "holdout rows (real, not trained on)"),
            ],
        )?;
        legend(&mut chart)?;
        Ok(())
    })
}

/// Reads one loss of an epoch.
type LossOf = fn(&EpochMetrics) -> f64;

fn loss_plot(history: &[EpochMetrics]) -> Plot {
    let epochs = history.len().max(1) as f64;
    let values: Vec<f64> = history
        .iter()
        .flat_map(|m| [m.generator_loss, m.critic_loss])
        .collect();
    let (low, high) = min_max(&values).unwrap_or((0.0, 1.0));
    let pad = ((high - low) * 0.05).max(1e-6);
    svg((560, 280), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Training losses", ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(1.0..epochs.max(2.0), (low - pad)..(high + pad))?;
        chart.configure_mesh().x_desc("epoch").draw()?;
        let series: [(&str, RGBColor, LossOf); 2] = [
            ("generator", REAL, |m| m.generator_loss),
            ("critic", SYNTHETIC, |m| m.critic_loss),
        ];
        for (name, color, get) in series {
            chart
                .draw_series(LineSeries::new(
                    history.iter().map(|m| (m.epoch as f64, get(m))),
                    color.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart)?;
        Ok(())
    })
}

fn figure(out: &mut String, plot: Plot) {
    match plot {
        Ok(svg) if !svg.is_empty() => {
            let _ = write!(out, "<figure>{svg}</figure>");
        }
        Ok(_) => {}
        Err(error) => {
            let _ = write!(
                out,
                "<p class=\"error\">plot failed: {}</p>",
                escape(&error.to_string())
            );
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}\
h1{margin-bottom:0}table{border-collapse:collapse;margin:1em 0}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}\
th{background:#f4f4f4}.pass{background:#d7f5dd;color:#135c22}.warn{background:#fff2c8;color:#7a5a00}.fail{background:#fbd5d5;color:#8a1616}\
.na{color:#888}.mark{font-weight:600;border-radius:4px;padding:2px 8px}figure{display:inline-block;margin:6px;vertical-align:top}\
.grid{display:flex;flex-wrap:wrap}.note{color:#555;font-size:90%}.error{color:#8a1616}";

const CHECK: &str = "window.__errors=0;window.addEventListener('error',function(){window.__errors++;});\
window.addEventListener('load',function(){var s=document.querySelectorAll('figure svg');var d=0;\
s.forEach(function(e){var r=e.getBoundingClientRect();if(r.width>0&&r.height>0&&e.querySelector('rect,path,polyline,line'))d++;});\
document.body.setAttribute('data-plots',s.length);document.body.setAttribute('data-plots-drawn',d);\
document.body.setAttribute('data-errors',window.__errors);});";

/// Renders the page.
pub fn render(report: &Report, tables: &Tables, history: &[EpochMetrics]) -> String {
    let mut out = String::with_capacity(1 << 20);
    let inputs = &report.inputs;
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>synth report: {}</title><style>{STYLE}</style><script>{CHECK}</script></head><body>",
        escape(&inputs.synthetic)
    );
    let _ = write!(
        out,
        "<h1>Synthetic data report</h1><p class=\"note\">{} synthetic rows from <code>{}</code> against {} real rows of <code>{}</code>{}. Column kinds from {}. synth {}, seed {}.</p>",
        inputs.rows.synthetic,
        escape(&inputs.synthetic),
        inputs.rows.real,
        escape(&inputs.real),
        inputs
            .holdout
            .as_ref()
            .map_or_else(String::new, |h| format!(
                " and {} holdout rows ({})",
                inputs.rows.holdout,
                escape(h)
            )),
        escape(&inputs.schema),
        escape(&inputs.synth_version),
        inputs.seed
    );

    out.push_str("<h2>Summary</h2><table><tr><th>score</th><th>value</th><th>mark</th><th>what it measures</th></tr>");
    for mark in &report.summary {
        let class = if mark.mark == "n/a" { "na" } else { mark.mark };
        let threshold = mark
            .threshold
            .map_or_else(String::new, |t| format!(" (gate {t})"));
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td><span class=\"mark {class}\">{}</span>{threshold}</td><td>{}</td></tr>",
            mark.name,
            number(mark.value),
            mark.mark,
            escape(mark.description)
        );
    }
    out.push_str("</table>");

    // Fidelity.
    let fidelity = &report.fidelity;
    let _ = write!(
        out,
        "<h2>Fidelity</h2><p>Quality {} (column shapes {}, column pair trends {} over the {} associated pairs; {} over all pairs). Coverage {}. Detection AUC {} on {} rows of each table (0.5: indistinguishable).</p>",
        number(Some(fidelity.quality)),
        number(Some(fidelity.column_shapes)),
        number(Some(fidelity.column_pair_trends)),
        fidelity.pairs.iter().filter(|p| p.counted).count(),
        number(Some(fidelity.all_pairs)),
        number(Some(fidelity.coverage)),
        number(Some(fidelity.detection_auc)),
        fidelity.detection.rows
    );
    out.push_str("<table><tr><th>column</th><th>kind</th><th>shape</th><th>coverage</th><th>missing-value similarity</th><th>null share real / synthetic</th></tr>");
    for (name, scores) in &fidelity.columns {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{} ({})</td><td>{} ({})</td><td>{}</td><td>{:.3} / {:.3}</td></tr>",
            escape(name),
            scores.kind,
            number(Some(scores.shape)),
            scores.shape_metric,
            number(Some(scores.coverage)),
            scores.coverage_metric,
            number(Some(scores.missing_value_similarity)),
            scores.null_share[0],
            scores.null_share[1]
        );
    }
    out.push_str("</table><h3>Columns, real against synthetic</h3><div class=\"grid\">");
    for column in &tables.columns {
        let plot = match (&column.real, &column.synthetic) {
            (Values::Numbers(real), Values::Numbers(synthetic)) => {
                numeric_plot(column, real, synthetic)
            }
            (Values::Codes(real), Values::Codes(synthetic)) => {
                category_plot(column, real, synthetic)
            }
            _ => Ok(String::new()),
        };
        figure(&mut out, plot);
    }
    out.push_str("</div>");

    let correlations = &fidelity.correlations;
    if correlations.columns.len() >= 2 {
        let names = &correlations.columns;
        let rows = |matrix: &[f64]| -> Vec<Vec<f64>> {
            matrix.chunks(names.len()).map(<[f64]>::to_vec).collect()
        };
        let (real, synthetic) = (rows(&correlations.real), rows(&correlations.synthetic));
        let difference: Vec<Vec<f64>> = real
            .iter()
            .zip(&synthetic)
            .map(|(r, s)| r.iter().zip(s).map(|(a, b)| b - a).collect())
            .collect();
        out.push_str("<h3>Correlations (Pearson; blue −1, red +1)</h3><div class=\"grid\">");
        figure(&mut out, heatmap("real", names, &real));
        figure(&mut out, heatmap("synthetic", names, &synthetic));
        figure(&mut out, heatmap("synthetic − real", names, &difference));
        out.push_str("</div>");
    }
    let mut worst: Vec<&super::fidelity::PairScores> = fidelity
        .pairs
        .iter()
        .filter(|p| p.score.is_finite())
        .collect();
    worst.sort_by(|a, b| a.score.total_cmp(&b.score));
    out.push_str("<h3>Weakest column pairs</h3><table><tr><th>pair</th><th>metric</th><th>score</th><th>real association</th><th>counted</th></tr>");
    for pair in worst.iter().take(15) {
        let _ = write!(
            out,
            "<tr><td>{} × {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&pair.columns[0]),
            escape(&pair.columns[1]),
            pair.metric,
            number(Some(pair.score)),
            number(Some(pair.real_association)),
            if pair.counted { "yes" } else { "no" }
        );
    }
    out.push_str("</table>");

    // Utility.
    out.push_str("<h2>ML utility</h2>");
    match &report.utility {
        Some(utility) => {
            let _ = write!(
                out,
                "<p>Gradient-boosted trees predict <code>{}</code> ({}{}), trained on {} rows of each kind and scored on {} holdout rows. Synthetic over real ({}): {}.</p><table><tr><th>metric</th><th>trained on real</th><th>on synthetic</th><th>on real + synthetic</th></tr>",
                escape(&utility.target),
                utility.task,
                utility.positive_class.as_ref().map_or_else(String::new, |c| format!(", positive class {}", escape(c))),
                utility.train_rows,
                utility.test_rows,
                utility.primary,
                number(Some(utility.synthetic_over_real))
            );
            for (name, scores) in &utility.metrics {
                let _ = write!(
                    out,
                    "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    number(Some(scores.real)),
                    number(Some(scores.synthetic)),
                    number(Some(scores.augmented))
                );
            }
            out.push_str("</table>");
        }
        None => out.push_str("<p class=\"note\">Not computed: pass <code>--target COLUMN</code> (with a holdout) to score models trained on synthetic rows.</p>"),
    }

    // Privacy.
    let privacy = &report.privacy;
    out.push_str(
        "<h2>Privacy</h2><table><tr><th>measure</th><th>value</th><th>reference</th></tr>",
    );
    let share = privacy.dcr_closer_to_train.map_or_else(
        || "– (needs a holdout)".to_owned(),
        |s| {
            format!(
                "{:.3} [{:.3}, {:.3}]",
                s.value, s.interval[0], s.interval[1]
            )
        },
    );
    let rows = [
        (
            "synthetic rows closer to train than to holdout",
            share,
            "0.5 ideal".to_owned(),
        ),
        (
            "median nearest / second-nearest distance ratio",
            number(Some(privacy.nndr_median)),
            format!("holdout {}", number(privacy.holdout_nndr_median)),
        ),
        (
            "exact copies of training rows",
            format!("{} ({:.4})", privacy.exact_copies, privacy.exact_copy_share),
            format!("holdout rate {}", number(privacy.holdout_exact_copy_share)),
        ),
        (
            "membership-inference AUC",
            number(privacy.mia_auc),
            "0.5 ideal".to_owned(),
        ),
        (
            "rare categories reproduced",
            format!(
                "{} of {}",
                privacy.rare_category_leaks, privacy.rare_categories
            ),
            format!(
                "seen fewer than {} times in training; {} of them also in the holdout",
                privacy.rare_below,
                privacy
                    .holdout_rare_category_share
                    .map_or_else(|| "–".to_owned(), |s| format!("{:.0}%", s * 100.0))
            ),
        ),
        (
            "median distance to closest training row",
            number(Some(privacy.distance_medians.synthetic_to_train)),
            format!(
                "holdout {}",
                number(privacy.distance_medians.holdout_to_train)
            ),
        ),
    ];
    for (measure, value, reference) in rows {
        let _ = write!(
            out,
            "<tr><td>{measure}</td><td>{value}</td><td>{reference}</td></tr>"
        );
    }
    let _ = write!(
        out,
        "</table><p class=\"note\">{} synthetic query rows; reference sets of {} rows; exact copies checked on every row.</p>",
        privacy.queries, privacy.reference_rows
    );
    figure(
        &mut out,
        distance_plot(
            &privacy.distances.synthetic_to_train,
            &privacy.distances.holdout_to_train,
        ),
    );

    if !history.is_empty() {
        out.push_str("<h2>Training</h2>");
        figure(&mut out, loss_plot(history));
    }
    out.push_str("</body></html>\n");
    out
}
