//! E-paper images: a palette raster drawn directly (no anti-aliasing: a glyph pixel is set when
//! the outline covers at least [`COVERAGE_THRESHOLD`] of it, so text stays crisp on 1-bit and
//! 3-colour panels), text through [`crate::text`] (embedded DejaVu Sans with fallback fonts,
//! bidi reordering and shaping), long texts cut with "…". The layout uses both dimensions: text
//! grows with the height as far as the width allows, tall panels get a two-line subject, the
//! list of meetings fills the height and the date sits at the bottom.
//! Encoded as indexed PNG (the palette is the panel's) and, for OpenEPaperLink, as baseline JPEG.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::{Language, Palette, PngSize};
use crate::html::Labels;
use crate::projection::{Projection, Status, local_time, short_date};
pub use crate::text::{FontError, Fonts};
use crate::text::{fit, isolate, wrap2};

/// Palette indices.
pub const WHITE: u8 = 0;
pub const BLACK: u8 = 1;
pub const RED: u8 = 2;

/// A glyph pixel is drawn when its coverage reaches this.
pub const COVERAGE_THRESHOLD: f32 = 0.45;

/// The colours of a palette, by index.
pub fn palette_rgb(palette: Palette) -> &'static [[u8; 3]] {
    match palette {
        Palette::Bw => &[[255, 255, 255], [0, 0, 0]],
        Palette::Bwr => &[[255, 255, 255], [0, 0, 0], [255, 0, 0]],
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
    #[error("JPEG encoding failed: {0}")]
    Jpeg(#[from] jpeg_encoder::EncodingError),
}

/// Where a piece of text went (for tests and debugging); `text` in logical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextBox {
    pub role: &'static str,
    pub text: String,
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

/// A rendered image: one palette index per pixel, row-major.
#[derive(Debug, Clone)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub palette: Palette,
    pub pixels: Vec<u8>,
    pub texts: Vec<TextBox>,
    /// Characters no font could draw (shown as "�"), without repeats.
    pub missing: Vec<char>,
}

impl Image {
    fn new(size: PngSize) -> Self {
        Self {
            width: size.width,
            height: size.height,
            palette: size.palette,
            pixels: vec![WHITE; size.width as usize * size.height as usize],
            texts: Vec::new(),
            missing: Vec::new(),
        }
    }

    fn set(&mut self, x: i32, y: i32, color: u8) {
        if x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height {
            self.pixels[y as usize * self.width as usize + x as usize] = color;
        }
    }

    fn fill(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, color: u8) {
        for y in y0.max(0)..y1.min(self.height as i32) {
            for x in x0.max(0)..x1.min(self.width as i32) {
                self.set(x, y, color);
            }
        }
    }

    fn outline(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, w: i32, color: u8) {
        self.fill(x0, y0, x1, y0 + w, color);
        self.fill(x0, y1 - w, x1, y1, color);
        self.fill(x0, y0, x0 + w, y1, color);
        self.fill(x1 - w, y0, x1, y1, color);
    }

    pub fn pixel(&self, x: u32, y: u32) -> u8 {
        self.pixels[y as usize * self.width as usize + x as usize]
    }

    /// Indexed PNG: 1 bit per pixel for `bw`, 2 bits for `bwr`, the palette's colours only.
    pub fn to_png(&self) -> Result<Vec<u8>, RasterError> {
        let (depth, bits) = match self.palette {
            Palette::Bw => (png::BitDepth::One, 1usize),
            Palette::Bwr => (png::BitDepth::Two, 2usize),
        };
        let per_byte = 8 / bits;
        let row_bytes = (self.width as usize).div_ceil(per_byte);
        let mut data = vec![0u8; row_bytes * self.height as usize];
        for y in 0..self.height as usize {
            for x in 0..self.width as usize {
                let v = self.pixels[y * self.width as usize + x];
                let shift = 8 - bits * (x % per_byte + 1);
                data[y * row_bytes + x / per_byte] |= v << shift;
            }
        }
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
            encoder.set_color(png::ColorType::Indexed);
            encoder.set_depth(depth);
            encoder.set_palette(
                palette_rgb(self.palette)
                    .iter()
                    .flatten()
                    .copied()
                    .collect::<Vec<u8>>(),
            );
            encoder.set_compression(png::Compression::High);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&data)?;
            writer.finish()?;
        }
        Ok(out)
    }

    /// Baseline JPEG (what OpenEPaperLink's `/imgupload` takes), no chroma subsampling so red
    /// edges stay where they are.
    pub fn to_jpeg(&self) -> Result<Vec<u8>, RasterError> {
        let colours = palette_rgb(self.palette);
        let rgb: Vec<u8> = self
            .pixels
            .iter()
            .flat_map(|&i| colours.get(i as usize).copied().unwrap_or([255, 255, 255]))
            .collect();
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 100);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1);
        encoder.encode(
            &rgb,
            u16::try_from(self.width).unwrap_or(u16::MAX),
            u16::try_from(self.height).unwrap_or(u16::MAX),
            jpeg_encoder::ColorType::Rgb,
        )?;
        Ok(out)
    }
}

#[derive(Clone, Copy)]
struct Style {
    role: &'static str,
    bold: bool,
    px: f32,
    color: u8,
}

const fn style(role: &'static str, bold: bool, px: f32, color: u8) -> Style {
    Style {
        role,
        bold,
        px,
        color,
    }
}

struct Painter<'a> {
    img: Image,
    fonts: &'a Fonts,
}

impl Painter<'_> {
    /// Draws `text` with its top-left at (x, top) and records its box; returns its width.
    fn text(&mut self, style: Style, x: i32, top: i32, text: &str) -> i32 {
        let Style {
            role,
            bold,
            px,
            color,
        } = style;
        let line = self.fonts.shape(bold, px, text);
        let baseline = top as f32 + self.fonts.ascent(px);
        for (outlined, stroke) in self.fonts.outlines(&line, x as f32, baseline) {
            let bounds = outlined.px_bounds();
            let (bx, by) = (bounds.min.x as i32, bounds.min.y as i32);
            let img = &mut self.img;
            outlined.draw(|dx, dy, coverage| {
                if coverage >= COVERAGE_THRESHOLD {
                    // A fallback glyph in a bold line is emboldened by widening its strokes.
                    for shift in 0..=stroke {
                        img.set(bx + dx as i32 + shift, by + dy as i32, color);
                    }
                }
            });
        }
        for c in &line.missing {
            if !self.img.missing.contains(c) {
                self.img.missing.push(*c);
            }
        }
        let width = line.width.ceil() as i32;
        self.img.texts.push(TextBox {
            role,
            // As a person reads it: without the invisible bidi controls.
            text: text
                .chars()
                .filter(|c| !matches!(c, '\u{2066}'..='\u{2069}'))
                .collect(),
            x,
            y: top,
            width,
            height: self.fonts.line_height(px),
        });
        width
    }

    fn line_height(&self, px: f32) -> i32 {
        self.fonts.line_height(px)
    }

    fn width(&self, bold: bool, px: f32, text: &str) -> f32 {
        self.fonts.width(bold, px, text)
    }
}

/// Renders a room's sign at one size.
pub fn render(
    p: &Projection,
    size: PngSize,
    fonts: &Fonts,
    labels: &Labels,
    tz: &Tz,
    language: Language,
) -> Image {
    let w = size.width as i32;
    let h = size.height as i32;
    // The reference design is 296×128. Text grows with the height up to 1.2× what the width
    // alone would allow (long texts are cut with "…" anyway); margins follow the smaller scale.
    let by_width = size.width as f32 / 296.0;
    let by_height = size.height as f32 / 128.0;
    let s = (by_width * 1.2).min(by_height).max(0.5);
    let tall = by_height > by_width * 1.2;
    let m = (5.0 * by_width.min(by_height)).round().max(2.0) as i32;
    let accent = match size.palette {
        Palette::Bw => BLACK,
        Palette::Bwr => RED,
    };
    let local = |t: DateTime<Utc>| local_time(t, tz, p.date, language);
    let mut painter = Painter {
        img: Image::new(size),
        fonts,
    };
    let inner = (w - 2 * m) as f32;

    // Room name.
    let name_px = 17.0 * s;
    let mut y = m;
    let name = fit(fonts, true, name_px, &isolate(&p.name), inner);
    painter.text(style("name", true, name_px, BLACK), m, y, &name);
    y += painter.line_height(name_px);

    // Status band.
    let band_h = (34.0 * s).round() as i32;
    let (band_bg, band_fg) = match p.status {
        Status::Free => (None, BLACK),
        Status::StartingSoon => (None, accent),
        Status::Busy | Status::EndingSoon => (Some(accent), WHITE),
        Status::Stale | Status::Unknown => (Some(BLACK), WHITE),
    };
    let border = (2.0 * s).round().max(1.0) as i32;
    match band_bg {
        Some(bg) => painter.img.fill(m, y, w - m, y + band_h, bg),
        None => painter
            .img
            .outline(m, y, w - m, y + band_h, border, band_fg),
    }
    let word_px = 24.0 * s;
    let pad = (6.0 * s).round() as i32;
    let word = fit(
        fonts,
        true,
        word_px,
        labels.status(p.status),
        inner - 2.0 * pad as f32,
    );
    let word_top = y + (band_h - painter.line_height(word_px)) / 2 + (s).round() as i32;
    painter.text(
        style("status", true, word_px, band_fg),
        m + pad,
        word_top,
        &word,
    );
    let until = match p.status {
        Status::Stale => p
            .stale_since
            .map(|t| format!("{} {}", labels.since, local(t))),
        _ => labels.until_text(p),
    };
    if let Some(until) = until {
        let until_px = 13.0 * s;
        let used = painter.width(true, word_px, &word) + 3.0 * pad as f32;
        let room = inner - used;
        if room > 20.0 * s {
            let text = fit(fonts, false, until_px, &until, room);
            let tw = painter.width(false, until_px, &text).ceil() as i32;
            let top = y + (band_h - painter.line_height(until_px)) / 2 + (s).round() as i32;
            painter.text(
                style("until", false, until_px, band_fg),
                w - m - pad - tw,
                top,
                &text,
            );
        }
    }
    y += band_h + (4.0 * s).round() as i32;

    let subject_px = 15.0 * s;
    let detail_px = 12.0 * s;
    // Tall panels keep the bottom line for the date.
    let footer_px = 10.0 * s;
    let bottom = if tall {
        h - m - painter.line_height(footer_px)
    } else {
        h - m / 2
    };
    let fits = |y: i32, px: f32, painter: &Painter<'_>| y + painter.line_height(px) <= bottom;

    if let Some(current) = &p.current {
        let subject = isolate(current.subject.as_deref().unwrap_or(labels.booked));
        let lines = if tall {
            wrap2(fonts, true, subject_px, &subject, inner)
        } else {
            vec![fit(fonts, true, subject_px, &subject, inner)]
        };
        for line in lines {
            if fits(y, subject_px, &painter) {
                painter.text(style("subject", true, subject_px, BLACK), m, y, &line);
                y += painter.line_height(subject_px);
            }
        }
        if fits(y, detail_px, &painter) {
            let mut detail = if current.all_day {
                labels.all_day.to_string()
            } else {
                current.time.clone()
            };
            if let Some(org) = &current.organizer {
                detail.push_str(" · ");
                detail.push_str(&isolate(org));
            }
            let text = fit(fonts, false, detail_px, &detail, inner);
            painter.text(style("detail", false, detail_px, BLACK), m, y, &text);
            y += painter.line_height(detail_px);
        }
        y += (3.0 * s).round() as i32;
    }

    let mut lines: Vec<(String, bool)> = p
        .next
        .iter()
        .map(|n| {
            let subject = isolate(n.subject.as_deref().unwrap_or(labels.booked));
            (format!("{}  {subject}", n.time), n.blocking)
        })
        .collect();
    if p.current.is_none() {
        lines.extend(p.all_day.iter().map(|a| {
            let subject = isolate(a.subject.as_deref().unwrap_or(labels.booked));
            (format!("{}: {subject}", labels.all_day), a.blocking)
        }));
    }
    if lines.is_empty() && p.current.is_none() && p.status != Status::Unknown {
        lines.push((labels.no_more.to_string(), false));
    }
    let mut first = true;
    for (line, _) in lines {
        if !fits(y, detail_px, &painter) {
            break;
        }
        let label = if first && p.current.is_some() {
            format!("{}: {line}", labels.next)
        } else {
            line
        };
        first = false;
        let text = fit(fonts, false, detail_px, &label, inner);
        painter.text(style("next", false, detail_px, BLACK), m, y, &text);
        y += painter.line_height(detail_px);
    }

    if tall {
        let rule = (s).round().max(1.0) as i32;
        let top = h - m - painter.line_height(footer_px);
        painter
            .img
            .fill(m, top - rule * 2, w - m, top - rule, BLACK);
        let date = short_date(p.date, language);
        painter.text(style("date", false, footer_px, BLACK), m, top, &date);
    }
    painter.img
}
