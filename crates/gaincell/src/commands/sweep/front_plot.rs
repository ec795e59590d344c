//! The Pareto plots: every point's accuracy against a cost, the front drawn as a line through its points (each
//! labelled with its settings), the dominated points grey.

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plot::{Canvas, COLOURS, FAMILY};

/// One scatter of accuracy against a cost.
pub struct Front {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_fmt: fn(f64) -> String,
    /// (cost, accuracy as shown, on the front, label).
    pub points: Vec<(f64, f64, bool, String)>,
}

const GREY: RGBColor = RGBColor(170, 170, 170);

pub fn front_on(canvas: Canvas, spec: &Front) -> Result<()> {
    let (x0, x1) = bounds(spec.points.iter().map(|p| p.0));
    // A log axis once the costs span more than a decade.
    let log_x = x0 > 0.0 && x1 / x0 > 10.0;
    let (lo, hi) = if log_x {
        (x0 / 1.5, x1 * 1.5)
    } else {
        let pad = if x1 > x0 {
            (x1 - x0) * 0.08
        } else {
            x0.abs() * 0.05 + 1e-30
        };
        (x0 - pad, x1 + pad)
    };
    match (canvas, log_x) {
        (Canvas::Png(a), true) => draw(a, spec, (lo..hi).log_scale()),
        (Canvas::Png(a), false) => draw(a, spec, lo..hi),
        (Canvas::Svg(a), true) => draw(a, spec, (lo..hi).log_scale()),
        (Canvas::Svg(a), false) => draw(a, spec, lo..hi),
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
}

fn draw<DB, X>(root: DrawingArea<DB, Shift>, spec: &Front, x: X) -> Result<()>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing a plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let (y0, y1) = bounds(spec.points.iter().map(|p| p.1));
    let pad = if y1 > y0 {
        (y1 - y0) * 0.1
    } else {
        y0.abs() * 0.05 + 1e-3
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(&spec.title, (FAMILY, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x, (y0 - pad)..(y1 + pad))
        .map_err(err)?;
    let x_fmt = spec.x_fmt;
    chart
        .configure_mesh()
        .x_desc(spec.x_desc.as_str())
        .y_desc(spec.y_desc.as_str())
        .x_labels(8)
        .x_label_formatter(&|v| x_fmt(*v))
        .y_label_formatter(&|v| format!("{v:.3}"))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let finite = |p: &&(f64, f64, bool, String)| p.0.is_finite() && p.1.is_finite();
    let colour = COLOURS[0];
    chart
        .draw_series(
            spec.points
                .iter()
                .filter(finite)
                .filter(|p| !p.2)
                .map(|p| Circle::new((p.0, p.1), 4, GREY.filled())),
        )
        .map_err(err)?
        .label("dominated")
        .legend(|(x, y)| Circle::new((x + 12, y), 4, GREY.filled()));
    let mut front: Vec<&(f64, f64, bool, String)> =
        spec.points.iter().filter(finite).filter(|p| p.2).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    chart
        .draw_series(LineSeries::new(
            front.iter().map(|p| (p.0, p.1)),
            colour.stroke_width(2),
        ))
        .map_err(err)?
        .label("Pareto front")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2)));
    chart
        .draw_series(
            front
                .iter()
                .map(|p| Circle::new((p.0, p.1), 5, colour.filled())),
        )
        .map_err(err)?;
    let style = TextStyle::from((FAMILY, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
    chart
        .draw_series(
            front
                .iter()
                .map(|p| Text::new(format!(" {}", p.3), (p.0, p.1), style.clone())),
        )
        .map_err(err)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
