//! Text for the e-paper images: fonts with fallback, bidirectional reordering and shaping.
//!
//! A line of text goes through three steps:
//!
//! 1. **Fonts, glyph by glyph.** The embedded DejaVu Sans (regular/bold; Latin, Greek, Cyrillic,
//!    Arabic, Hebrew, many symbols) is the primary font. A character it lacks is taken from the
//!    first fallback font that has it: the files of the `fonts` setting first, then well-known
//!    system font files ([`SYSTEM_FONTS`], e.g. Noto Sans CJK under `/usr/share/fonts`), each
//!    loaded when first needed. A character no font has is drawn as U+FFFD "�" from the primary
//!    font and reported in [`Shaped::missing`].
//! 2. **Bidi** (UAX #9, `unicode-bidi`): the line's paragraph direction is left-to-right (the
//!    sign's layout is); texts wrapped with [`isolate`] take their own direction from their first
//!    strong character (like HTML's `dir="auto"`), so a Hebrew or Arabic subject reads
//!    right-to-left inside a left-to-right line. Runs come out in visual order.
//! 3. **Shaping** (`rustybuzz`, a port of HarfBuzz): each run and font segment is shaped with
//!    its direction and script: Arabic joining forms, marks, ligatures and kerning come from the
//!    font's OpenType tables.
//!
//! Glyph sizes are matched by em: a fallback glyph is as large as a primary glyph would be.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ab_glyph::{Font, FontVec, GlyphId, OutlinedGlyph, PxScale, ScaleFont, point};
use unicode_bidi::{Level, ParagraphBidiInfo};

const REGULAR: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

/// Drawn for a character no font has.
pub const REPLACEMENT: char = '\u{FFFD}';

/// First strong isolate … pop directional isolate: see [`isolate`].
const FSI: char = '\u{2068}';
const PDI: char = '\u{2069}';

/// Font files searched when the primary font lacks a glyph and the `fonts` setting does not
/// have it either (each used only if present; TTC: the first face). Debian/Ubuntu paths first,
/// then Fedora/Arch ones.
pub const SYSTEM_FONTS: &[&str] = &[
    // CJK: Debian fonts-noto-cjk, Fedora google-noto-sans-cjk, Arch noto-fonts-cjk.
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKjp-Regular.otf",
    // CJK: Droid Sans Fallback, WenQuanYi.
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    // Other scripts (fonts-noto-core).
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansHebrew-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansThai-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf",
    // Symbols and monochrome emoji (outlines; colour-bitmap emoji fonts cannot be drawn in
    // one bit and are skipped glyph by glyph).
    "/usr/share/fonts/truetype/noto/NotoSansSymbols2-Regular.ttf",
    "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf",
    "/usr/share/fonts/gdouros-symbola/Symbola.ttf",
    // Last resort: GNU Unifont covers the whole Basic Multilingual Plane.
    "/usr/share/fonts/opentype/unifont/unifont.otf",
    "/usr/share/fonts/truetype/unifont/unifont.ttf",
];

#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error("embedded font unreadable: {0}")]
    Embedded(ab_glyph::InvalidFont),
    #[error("font file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// Which face a glyph comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FaceId {
    Regular,
    Bold,
    Fallback(usize),
}

struct Face {
    font: FontVec,
    index: u32,
    /// Pixels per em at `PxScale(1.0)`: `units_per_em / (ascent − descent)`.
    em_per_px: f32,
    upem: f32,
}

impl Face {
    fn new(font: FontVec, index: u32) -> Self {
        let upem = font.units_per_em().unwrap_or(1000.0);
        let height = font.height_unscaled().max(1.0);
        Self {
            font,
            index,
            em_per_px: upem / height,
            upem,
        }
    }

    fn load(path: &Path) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| e.to_string())?;
        let font = FontVec::try_from_vec_and_index(data, 0).map_err(|e| e.to_string())?;
        Ok(Self::new(font, 0))
    }

    fn has(&self, c: char) -> bool {
        self.font.glyph_id(c).0 != 0
    }

    /// Has a glyph that can be drawn as an outline (colour-bitmap glyphs cannot).
    fn can_draw(&self, c: char) -> bool {
        let id = self.font.glyph_id(c);
        id.0 != 0 && (c.is_whitespace() || self.font.outline(id).is_some())
    }
}

struct Fallback {
    path: PathBuf,
    face: OnceLock<Option<Face>>,
}

impl Fallback {
    fn get(&self) -> Option<&Face> {
        self.face
            .get_or_init(|| {
                if !self.path.is_file() {
                    return None;
                }
                match Face::load(&self.path) {
                    Ok(face) => {
                        tracing::debug!(path = %self.path.display(), "doorsign: fallback font loaded");
                        Some(face)
                    }
                    Err(reason) => {
                        tracing::warn!(path = %self.path.display(), %reason, "doorsign: fallback font unreadable; skipped");
                        None
                    }
                }
            })
            .as_ref()
    }
}

/// The fonts of the images: the embedded primary faces and the fallbacks.
pub struct Fonts {
    regular: Face,
    bold: Face,
    fallbacks: Vec<Fallback>,
    /// (character, bold) → the face that draws it (`None`: no font has it).
    choice: Mutex<HashMap<(char, bool), Option<FaceId>>>,
}

/// A glyph placed on a line: x from the line's start, y offset upwards from the baseline.
#[derive(Debug, Clone, Copy)]
struct Placed {
    face: FaceId,
    id: GlyphId,
    px: f32,
    x: f32,
    y: f32,
}

/// A shaped line of text, in visual order.
pub struct Shaped {
    glyphs: Vec<Placed>,
    bold: bool,
    pub width: f32,
    /// Characters no font has (drawn as "�"), in order of appearance, without repeats.
    pub missing: Vec<char>,
}

/// Wraps `text` so its direction comes from its own first strong character (the bidi
/// equivalent of HTML's `dir="auto"` / `<bdi>`), whatever surrounds it.
pub fn isolate(text: &str) -> String {
    format!("{FSI}{text}{PDI}")
}

/// Bidi controls: they steer the reordering and are never drawn.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that belong to the glyph before them (combining marks, joiners, variation
/// selectors, emoji modifiers): they take the previous character's font when it has them.
fn attaches(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' | '\u{0483}'..='\u{0489}' | '\u{0591}'..='\u{05C7}'
        | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}'
        | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{200C}' | '\u{200D}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE00}'..='\u{FE0F}' | '\u{FE20}'..='\u{FE2F}'
        | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0100}'..='\u{E01EF}')
}

/// Default-ignorable format characters: shaped (they may steer joining) but never missing.
fn is_ignorable(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{E0000}'..='\u{E0FFF}')
}

impl Fonts {
    /// The embedded faces only (no fallbacks).
    pub fn embedded() -> Result<Self, FontError> {
        Self::new(&[], &[])
    }

    /// The embedded faces, then `files` (loaded now: an unreadable one is an error), then
    /// `system` (each loaded when first needed, skipped when absent or unreadable).
    pub fn new(files: &[PathBuf], system: &[&str]) -> Result<Self, FontError> {
        let embedded = |bytes: &[u8]| {
            FontVec::try_from_vec_and_index(bytes.to_vec(), 0)
                .map(|font| Face::new(font, 0))
                .map_err(FontError::Embedded)
        };
        let mut fallbacks = Vec::new();
        for path in files {
            let face = Face::load(path).map_err(|reason| FontError::File {
                path: path.clone(),
                reason,
            })?;
            fallbacks.push(Fallback {
                path: path.clone(),
                face: OnceLock::from(Some(face)),
            });
        }
        for path in system {
            let path = PathBuf::from(path);
            if files.contains(&path) {
                continue;
            }
            fallbacks.push(Fallback {
                path,
                face: OnceLock::new(),
            });
        }
        Ok(Self {
            regular: embedded(REGULAR)?,
            bold: embedded(BOLD)?,
            fallbacks,
            choice: Mutex::new(HashMap::new()),
        })
    }

    fn face(&self, id: FaceId) -> &Face {
        match id {
            FaceId::Regular => &self.regular,
            FaceId::Bold => &self.bold,
            FaceId::Fallback(i) => self
                .fallbacks
                .get(i)
                .and_then(Fallback::get)
                .unwrap_or(&self.regular),
        }
    }

    fn primary(&self, bold: bool) -> FaceId {
        if bold { FaceId::Bold } else { FaceId::Regular }
    }

    /// The face that draws `c`: the primary (bold or regular), the other primary, then the
    /// fallbacks in order. `None`: no font has it.
    fn choose(&self, c: char, bold: bool) -> Option<FaceId> {
        if let Some(hit) = crate::lock(&self.choice).get(&(c, bold)) {
            return *hit;
        }
        let primary = self.primary(bold);
        let other = self.primary(!bold);
        let found = if self.face(primary).has(c) {
            Some(primary)
        } else if self.face(other).has(c) {
            Some(other)
        } else {
            self.fallbacks.iter().enumerate().find_map(|(i, fallback)| {
                fallback
                    .get()
                    .filter(|face| face.can_draw(c))
                    .map(|_| FaceId::Fallback(i))
            })
        };
        crate::lock(&self.choice).insert((c, bold), found);
        found
    }

    /// Characters of `text` that no font has (they would show as "�").
    pub fn missing_glyphs(&self, text: &str) -> Vec<char> {
        text.chars()
            .filter(|c| !c.is_whitespace() && !c.is_control() && !is_ignorable(*c))
            .filter(|c| self.choose(*c, false).is_none())
            .collect()
    }

    /// Pixel height of one line at `px` (the primary font's ascent − descent + line gap).
    pub fn line_height(&self, px: f32) -> i32 {
        let scaled = self.regular.font.as_scaled(PxScale::from(px));
        (scaled.ascent() - scaled.descent() + scaled.line_gap()).ceil() as i32
    }

    /// The primary font's ascent at `px`: where the baseline sits below a line's top.
    pub fn ascent(&self, px: f32) -> f32 {
        self.regular.font.as_scaled(PxScale::from(px)).ascent()
    }

    /// Lays out one line: fonts per glyph, bidi reordering, shaping.
    pub fn shape(&self, bold: bool, px: f32, text: &str) -> Shaped {
        // Controls never show; other whitespace becomes a plain space.
        let mut missing = Vec::new();
        let clean: String = text
            .chars()
            .filter(|c| !c.is_control() || c.is_whitespace())
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .map(|c| {
                if is_ignorable(c) || c == ' ' || self.choose(c, bold).is_some() {
                    c
                } else {
                    if !missing.contains(&c) {
                        missing.push(c);
                    }
                    REPLACEMENT
                }
            })
            .collect();
        // Pixels per em of the primary face at this size: every face is drawn at this em.
        let primary = self.face(self.primary(bold));
        let ppem = px * primary.em_per_px;
        let mut glyphs = Vec::new();
        let mut x = 0.0f32;
        if clean.is_empty() {
            return Shaped {
                glyphs,
                bold,
                width: 0.0,
                missing,
            };
        }
        let bidi = ParagraphBidiInfo::new(&clean, Some(Level::ltr()));
        let (levels, runs) = bidi.visual_runs(0..clean.len());
        for run in runs {
            let rtl = levels.get(run.start).is_some_and(|l| l.is_rtl());
            // Split the run (logical order) into segments of one face each.
            let mut segments: Vec<(FaceId, String)> = Vec::new();
            for c in clean[run].chars() {
                if is_bidi_control(c) {
                    continue;
                }
                let previous = segments.last().map(|(face, _)| *face);
                let face = match previous {
                    Some(prev) if attaches(c) && (self.face(prev).has(c) || is_ignorable(c)) => {
                        prev
                    }
                    Some(prev) if c == ' ' => prev,
                    _ => self.choose(c, bold).unwrap_or_else(|| self.primary(bold)),
                };
                match segments.last_mut() {
                    Some((f, s)) if *f == face => s.push(c),
                    _ => segments.push((face, c.to_string())),
                }
            }
            if rtl {
                segments.reverse();
            }
            for (face_id, segment) in segments {
                x = self.shape_segment(face_id, &segment, rtl, ppem, x, &mut glyphs);
            }
        }
        Shaped {
            glyphs,
            bold,
            width: x,
            missing,
        }
    }

    /// Shapes one segment of one face and direction at pen position `x`; returns the new pen.
    fn shape_segment(
        &self,
        face_id: FaceId,
        text: &str,
        rtl: bool,
        ppem: f32,
        mut x: f32,
        out: &mut Vec<Placed>,
    ) -> f32 {
        let face = self.face(face_id);
        let units = ppem / face.upem;
        let px = ppem / face.em_per_px;
        let Some(rb) = rustybuzz::Face::from_slice(face.font.as_slice(), face.index) else {
            // Not parseable by the shaper (ab_glyph could read it): plain advances.
            let scaled = face.font.as_scaled(PxScale::from(px));
            for c in text.chars() {
                let id = face.font.glyph_id(c);
                out.push(Placed {
                    face: face_id,
                    id,
                    px,
                    x,
                    y: 0.0,
                });
                x += scaled.h_advance(id);
            }
            return x;
        };
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.set_direction(if rtl {
            rustybuzz::Direction::RightToLeft
        } else {
            rustybuzz::Direction::LeftToRight
        });
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&rb, &[], buffer);
        for (info, pos) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
            out.push(Placed {
                face: face_id,
                id: GlyphId(u16::try_from(info.glyph_id).unwrap_or(0)),
                px,
                x: x + pos.x_offset as f32 * units,
                y: pos.y_offset as f32 * units,
            });
            x += pos.x_advance as f32 * units;
        }
        x
    }

    /// Width in pixels of `text` at `px`.
    pub fn width(&self, bold: bool, px: f32, text: &str) -> f32 {
        self.shape(bold, px, text).width
    }

    /// Outlines of a shaped line whose baseline starts at (`x`, `baseline`), each with the
    /// horizontal stroke (in pixels) to add when a bold line uses a fallback font that has no
    /// bold face (0 otherwise): draw the glyph again shifted by 1..=stroke pixels.
    pub fn outlines(&self, line: &Shaped, x: f32, baseline: f32) -> Vec<(OutlinedGlyph, i32)> {
        line.glyphs
            .iter()
            .filter_map(|g| {
                let glyph = g
                    .id
                    .with_scale_and_position(PxScale::from(g.px), point(x + g.x, baseline - g.y));
                let stroke = match g.face {
                    FaceId::Fallback(_) if line.bold => (g.px / 28.0).round().max(1.0) as i32,
                    _ => 0,
                };
                self.face(g.face)
                    .font
                    .outline_glyph(glyph)
                    .map(|outlined| (outlined, stroke))
            })
            .collect()
    }
}

/// `text` as it fits into `max_width` pixels: whole, or its longest prefix that fits with "…".
pub fn fit(fonts: &Fonts, bold: bool, px: f32, text: &str, max_width: f32) -> String {
    let text: String = text
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if fonts.width(bold, px, text) <= max_width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let cut = |n: usize| -> String {
        let prefix: String = chars[..n].iter().collect();
        format!("{}…", prefix.trim_end())
    };
    // Binary search for the longest prefix that fits with the ellipsis.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fonts.width(bold, px, &cut(mid)) <= max_width {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    cut(lo)
}

/// Breaks `text` into at most two lines of `max_width`: the first at the last space that
/// fits (or, for text without spaces such as CJK, after the last character that fits), the
/// second cut with "…" when still too long.
pub fn wrap2(fonts: &Fonts, bold: bool, px: f32, text: &str, max_width: f32) -> Vec<String> {
    let whole = fit(fonts, bold, px, text, f32::INFINITY);
    if fonts.width(bold, px, &whole) <= max_width {
        return vec![whole];
    }
    let chars: Vec<char> = whole.chars().collect();
    let fits = |n: usize| {
        let prefix: String = chars[..n].iter().collect();
        fonts.width(bold, px, prefix.trim_end()) <= max_width
    };
    // The longest prefix that fits (binary search), then back to a space when there is one.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut split = lo;
    if let Some(space) = chars[..=lo.min(chars.len() - 1)]
        .iter()
        .rposition(|c| *c == ' ')
        .filter(|i| *i > 0)
    {
        split = space;
    }
    if split == 0 {
        return vec![fit(fonts, bold, px, &whole, max_width)];
    }
    let first: String = chars[..split].iter().collect();
    let rest: String = chars[split..].iter().collect();
    // Keep the isolate open on the second line too, so its direction stays the text's own.
    let rest = match (first.starts_with(FSI), rest.starts_with(FSI)) {
        (true, false) => format!("{FSI}{}", rest.trim_start()),
        _ => rest.trim_start().to_string(),
    };
    vec![
        first.trim_end().to_string(),
        fit(fonts, bold, px, &rest, max_width),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> Fonts {
        Fonts::embedded().expect("fonts")
    }

    /// The glyph ids of a shaped line, in visual order.
    fn ids(fonts: &Fonts, text: &str) -> Vec<u16> {
        fonts
            .shape(false, 20.0, text)
            .glyphs
            .iter()
            .map(|g| g.id.0)
            .collect()
    }

    fn id(fonts: &Fonts, c: char) -> u16 {
        fonts.regular.font.glyph_id(c).0
    }

    #[test]
    fn hebrew_is_reordered_right_to_left() {
        let f = fonts();
        // Logical "אבג" shows as ג ב א from left to right.
        let shown = ids(&f, &isolate("אבג"));
        let expected: Vec<u16> = ['ג', 'ב', 'א'].iter().map(|c| id(&f, *c)).collect();
        assert_eq!(shown, expected);
        // Inside a left-to-right line, the isolate keeps its place: time first, then Hebrew.
        let line = format!("10:00 {}", isolate("אב"));
        let shown = ids(&f, &line);
        assert_eq!(shown[0], id(&f, '1'));
        assert_eq!(&shown[shown.len() - 2..], &[id(&f, 'ב'), id(&f, 'א')]);
    }

    #[test]
    fn arabic_is_shaped_into_joining_forms() {
        let f = fonts();
        // "بب": two joined beh — the shaper picks contextual forms, not the isolated one.
        let isolated = id(&f, 'ب');
        let shown = ids(&f, &isolate("بب"));
        assert_eq!(shown.len(), 2);
        assert!(
            shown.iter().all(|g| *g != isolated),
            "joined forms expected, got {shown:?} (isolated is {isolated})"
        );
    }

    #[test]
    fn characters_no_font_has_become_a_visible_replacement() {
        let f = fonts();
        // U+0378 is unassigned: no font has it.
        let shaped = f.shape(false, 20.0, "a\u{0378}b");
        assert_eq!(shaped.missing, vec!['\u{0378}']);
        let replacement = id(&f, REPLACEMENT);
        assert_ne!(replacement, 0, "DejaVu Sans has U+FFFD");
        assert!(shaped.glyphs.iter().any(|g| g.id.0 == replacement));
        assert_eq!(f.missing_glyphs("会議 ✓"), vec!['会', '議']);
    }

    #[test]
    fn control_characters_are_dropped() {
        let f = fonts();
        assert_eq!(
            f.width(false, 20.0, "a\u{0}\u{7}b"),
            f.width(false, 20.0, "ab")
        );
        assert!(f.shape(false, 20.0, "a\u{0}b").missing.is_empty());
    }

    #[test]
    fn wrapping_at_spaces_and_inside_text_without_spaces() {
        let f = fonts();
        let text = "Quarterly review with the whole regional sales team";
        let lines = wrap2(&f, false, 20.0, text, 200.0);
        assert_eq!(lines.len(), 2);
        assert!(text.starts_with(&format!("{} ", lines[0])), "{lines:?}");
        assert!(f.width(false, 20.0, &lines[0]) <= 200.0);
        let next_word = text[lines[0].len() + 1..].split(' ').next().expect("word");
        assert!(
            f.width(false, 20.0, &format!("{} {next_word}", lines[0])) > 200.0,
            "the first line takes every word that fits: {lines:?}"
        );
        assert!(lines[1].ends_with('…'));
        assert!(f.width(false, 20.0, &lines[1]) <= 200.0);
        // No spaces at all: broken after the last character that fits.
        let long = "Donaudampfschifffahrtsgesellschaftskapitän";
        let lines = wrap2(&f, false, 20.0, long, 200.0);
        assert_eq!(lines.len(), 2);
        assert!(long.starts_with(&lines[0]));
        assert!(f.width(false, 20.0, &lines[0]) <= 200.0);
        assert_eq!(wrap2(&f, false, 20.0, "Short", 200.0), vec!["Short"]);
    }
}
