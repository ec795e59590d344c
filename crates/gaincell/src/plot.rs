//! Plots written as PNG and SVG with one drawing function: line charts (optionally log y, with dashed reference
//! lines), bar charts and stacked bar charts. Text is drawn with an embedded DejaVu Sans (these machines have no
//! system fonts).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::commands::cost::si;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
pub(crate) const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 640);

/// Chip series colours, then GPU reference colours.
pub(crate) const COLOURS: [RGBColor; 6] = [
    RGBColor(0, 90, 160),
    RGBColor(200, 80, 0),
    RGBColor(30, 140, 60),
    RGBColor(150, 40, 150),
    RGBColor(180, 30, 40),
    RGBColor(90, 90, 90),
];
const REF_COLOURS: [RGBColor; 4] = [
    RGBColor(0, 0, 0),
    RGBColor(120, 120, 120),
    RGBColor(140, 100, 20),
    RGBColor(60, 120, 140),
];
pub(crate) const PART_COLOURS: [RGBColor; 4] = [
    RGBColor(0, 90, 160),
    RGBColor(90, 170, 230),
    RGBColor(200, 80, 0),
    RGBColor(240, 180, 60),
];

pub(crate) fn font_ready() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok =
        *OK.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| anyhow!("the embedded plot font cannot be read"))
}

/// A line chart: chip series against the window, GPU baselines as dashed horizontal lines.
pub(crate) struct Lines {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    /// Formats a y value for the axis and the legend.
    pub y_fmt: fn(f64) -> String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    pub refs: Vec<(String, f64)>,
    pub legend: SeriesLabelPosition,
    /// A fixed y range instead of the automatic one.
    pub y_range: Option<(f64, f64)>,
}

/// Draw once on a PNG and once on an SVG backend.
pub(crate) fn save<F>(out: &Path, stem: &str, draw: F) -> Result<Vec<PathBuf>>
where
    F: Fn(Canvas) -> Result<()>,
{
    save_sized(out, stem, SIZE, draw)
}

/// [`save`] on a canvas of `size` pixels (e.g. wider, for side-by-side panels).
pub(crate) fn save_sized<F>(
    out: &Path,
    stem: &str,
    size: (u32, u32),
    draw: F,
) -> Result<Vec<PathBuf>>
where
    F: Fn(Canvas) -> Result<()>,
{
    let png = out.join(format!("{stem}.png"));
    let svg = out.join(format!("{stem}.svg"));
    draw(Canvas::Png(
        BitMapBackend::new(&png, size).into_drawing_area(),
    ))?;
    draw(Canvas::Svg(SVGBackend::new(&svg, size).into_drawing_area()))?;
    Ok(vec![png, svg])
}

/// The two back ends, so one drawing function serves both.
pub(crate) enum Canvas<'a> {
    Png(DrawingArea<BitMapBackend<'a>, Shift>),
    Svg(DrawingArea<SVGBackend<'a>, Shift>),
}

impl<'a> Canvas<'a> {
    /// The canvas split into `n` side-by-side panels.
    pub(crate) fn columns(self, n: usize) -> Vec<Canvas<'a>> {
        match self {
            Canvas::Png(a) => a
                .split_evenly((1, n))
                .into_iter()
                .map(Canvas::Png)
                .collect(),
            Canvas::Svg(a) => a
                .split_evenly((1, n))
                .into_iter()
                .map(Canvas::Svg)
                .collect(),
        }
    }
}

pub(crate) fn lines_on(canvas: Canvas, spec: &Lines, log_y: bool) -> Result<()> {
    let (lo, hi) = y_bounds(spec, log_y);
    match (canvas, log_y) {
        (Canvas::Png(a), true) => draw_lines(a, spec, (lo..hi).log_scale()),
        (Canvas::Png(a), false) => draw_lines(a, spec, lo..hi),
        (Canvas::Svg(a), true) => draw_lines(a, spec, (lo..hi).log_scale()),
        (Canvas::Svg(a), false) => draw_lines(a, spec, lo..hi),
    }
}

/// y range covering every series and reference: a factor of 2 of headroom on a log axis, from 0 on a linear one.
fn y_bounds(spec: &Lines, log_y: bool) -> (f64, f64) {
    if let Some(r) = spec.y_range {
        return r;
    }
    let ys = spec
        .series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .chain(spec.refs.iter().map(|&(_, y)| y));
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if log_y {
        (lo / 3.0, hi * 3.0)
    } else {
        (0.0, hi * 1.15)
    }
}

fn draw_lines<DB, Y>(root: DrawingArea<DB, Shift>, spec: &Lines, y: Y) -> Result<()>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing a plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let xs: Vec<f64> = spec
        .series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(x, _)| x))
        .collect();
    let (x0, x1) = xs
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    let pad = if x1 > x0 { (x1 - x0) * 0.05 } else { x0 * 0.5 };
    let mut sorted = xs.clone();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let distinct_x = sorted.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(&spec.title, (FAMILY, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), y)
        .map_err(err)?;
    let y_fmt = spec.y_fmt;
    chart
        .configure_mesh()
        .x_desc(spec.x_desc.as_str())
        .y_desc(spec.y_desc.as_str())
        // No more labels than distinct x values, so "{x:.0}" never prints one value twice.
        .x_labels(distinct_x.clamp(2, 10))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| y_fmt(*y))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for (i, (label, pts)) in spec.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(err)?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(err)?;
    }
    for (i, (label, value)) in spec.refs.iter().enumerate() {
        let colour = REF_COLOURS[i % REF_COLOURS.len()];
        let line = [(x0 - pad, *value), (x1 + pad, *value)];
        chart
            .draw_series(DashedLineSeries::new(line, 10, 6, colour.stroke_width(2)))
            .map_err(err)?
            .label(format!("{label}: {}", y_fmt(*value)))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
    }
    legend_and_present(&root, &mut chart, spec.legend.clone())
}

/// Draw the legend box at `position`, then write the picture.
fn legend_and_present<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing a plot: {e}");
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// An axis label: SI prefix, at most three significant digits, no trailing zeros ("100 ns", "2.5 µJ").
pub(crate) fn tick(y: f64, unit: &str) -> String {
    if y == 0.0 {
        return format!("0 {unit}");
    }
    let rounded = {
        let digits = 2 - y.abs().log10().floor() as i32;
        let scale = 10f64.powi(digits);
        (y * scale).round() / scale
    };
    let text = si(rounded, unit);
    let (number, rest) = text.split_once(' ').unwrap_or((&text, ""));
    format!("{} {rest}", trim_zeros(number))
}

/// "2.500" → "2.5", "100.0" → "100".
pub(crate) fn trim_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

/// A bar chart: one bar per category, its value printed above it, on a linear or log axis.
pub(crate) struct Bars {
    pub title: String,
    pub y_desc: String,
    /// Formats a y value for the axis and the bar labels.
    pub y_fmt: fn(f64) -> String,
    /// (category, value, colour).
    pub bars: Vec<(String, f64, RGBColor)>,
    pub log_y: bool,
}

/// Several bar charts side by side on one canvas.
pub(crate) fn bars_on(canvas: Canvas, panels: &[Bars]) -> Result<()> {
    match canvas {
        Canvas::Png(a) => draw_panels(a, panels),
        Canvas::Svg(a) => draw_panels(a, panels),
    }
}

fn draw_panels<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, panels: &[Bars]) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing a plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    for (area, spec) in root
        .split_evenly((1, panels.len().max(1)))
        .into_iter()
        .zip(panels)
    {
        let values = spec.bars.iter().map(|b| b.1);
        let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        if spec.log_y {
            let (lo, hi) = (lo.max(f64::MIN_POSITIVE) / 5.0, hi * 8.0);
            draw_bars(&area, spec, (lo..hi).log_scale(), lo)?;
        } else {
            draw_bars(&area, spec, 0.0..hi * 1.18, 0.0)?;
        }
    }
    root.present().map_err(err)
}

fn draw_bars<DB, Y>(area: &DrawingArea<DB, Shift>, spec: &Bars, y: Y, floor: f64) -> Result<()>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing a plot: {e}");
    let n = spec.bars.len();
    // A segmented range 0..k has k + 1 slots; one bar still needs a non-empty range (one slot stays blank).
    let last = n.saturating_sub(1).max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(&spec.title, (FAMILY, 20))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d((0..last).into_segmented(), y)
        .map_err(err)?;
    let y_fmt = spec.y_fmt;
    let label_of = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < n => spec.bars[*i].0.clone(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .y_desc(spec.y_desc.as_str())
        .x_label_formatter(&label_of)
        .y_label_formatter(&|y| y_fmt(*y))
        .label_style((FAMILY, if n > 4 { 10 } else { 14 }))
        .axis_desc_style((FAMILY, 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(spec.bars.iter().enumerate().map(|(i, (_, v, colour))| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), floor),
                    (SegmentValue::Exact(i + 1), *v),
                ],
                colour.filled(),
            );
            bar.set_margin(0, 0, 8, 8);
            bar
        }))
        .map_err(err)?;
    chart
        .draw_series(spec.bars.iter().enumerate().map(|(i, (_, v, _))| {
            Text::new(
                y_fmt(*v),
                (SegmentValue::CenterOf(i), *v),
                TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// A stacked bar chart: one bar per category, split into named parts.
pub(crate) struct Stacked {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub y_fmt: fn(f64) -> String,
    pub parts: Vec<String>,
    /// (category, one value per part).
    pub bars: Vec<(String, Vec<f64>)>,
}

pub(crate) fn stacked_on(canvas: Canvas, spec: &Stacked) -> Result<()> {
    match canvas {
        Canvas::Png(a) => draw_stacked(a, spec),
        Canvas::Svg(a) => draw_stacked(a, spec),
    }
}

fn draw_stacked<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, spec: &Stacked) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing a plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let top = spec
        .bars
        .iter()
        .map(|(_, p)| p.iter().sum::<f64>())
        .fold(0.0, f64::max);
    let n = spec.bars.len();
    let last = n.saturating_sub(1).max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(&spec.title, (FAMILY, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d((0..last).into_segmented(), 0.0..top * 1.3)
        .map_err(err)?;
    let y_fmt = spec.y_fmt;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_desc(spec.x_desc.as_str())
        .y_desc(spec.y_desc.as_str())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < n => spec.bars[*i].0.clone(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| y_fmt(*y))
        .label_style((FAMILY, if n > 12 { 11 } else { 15 }))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for (k, name) in spec.parts.iter().enumerate() {
        let colour = PART_COLOURS[k % PART_COLOURS.len()];
        let bars = spec.bars.iter().enumerate().map(|(i, (_, p))| {
            let base: f64 = p[..k].iter().sum();
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), base),
                    (SegmentValue::Exact(i + 1), base + p[k]),
                ],
                colour.filled(),
            );
            bar.set_margin(0, 0, 6, 6);
            bar
        });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    legend_and_present(&root, &mut chart, SeriesLabelPosition::UpperLeft)
}

/// A scatter chart of paired values (e.g. a circuit simulation against a model), with the y = x diagonal.
pub(crate) struct Scatter {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

pub(crate) fn scatter_on(canvas: Canvas, spec: &Scatter) -> Result<()> {
    match canvas {
        Canvas::Png(a) => draw_scatter(a, spec),
        Canvas::Svg(a) => draw_scatter(a, spec),
    }
}

fn draw_scatter<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, spec: &Scatter) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing a plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let all = spec.series.iter().flat_map(|(_, p)| p.iter());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &(x, y)| {
        (l.min(x).min(y), h.max(x).max(y))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let pad = (hi - lo) * 0.05;
    let range = (lo - pad)..(hi + pad);
    let mut chart = ChartBuilder::on(&root)
        .caption(&spec.title, (FAMILY, 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(range.clone(), range)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(spec.x_desc.as_str())
        .y_desc(spec.y_desc.as_str())
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_series(DashedLineSeries::new(
            [(lo - pad, lo - pad), (hi + pad, hi + pad)],
            8,
            5,
            grey.stroke_width(1),
        ))
        .map_err(err)?
        .label("y = x")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(1)));
    for (i, (label, pts)) in spec.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 3, colour.mix(0.7).filled())),
            )
            .map_err(err)?
            .label(label.as_str())
            .legend(move |(x, y)| Circle::new((x + 12, y), 4, colour.filled()));
    }
    legend_and_present(&root, &mut chart, SeriesLabelPosition::UpperLeft)
}
