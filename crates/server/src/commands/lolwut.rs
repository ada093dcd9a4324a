//! LOLWUT [VERSION v [...]]: a piece of computer art and the server's version, as Redis
//! prints it. Tools read the version from its last line ("... Redis ver. 7.0.15"), so that
//! line is Redis's exactly. Version 5 draws Georg Nees' "Schotter" (a grid of squares that
//! falls into disorder row by row) in Braille characters; every other version prints only the
//! version line, which is what Redis 7.0 prints by default and for versions it has no art
//! for. (Redis's version 6 shows a fixed bitmap from a game; there is no art of ours for it.)

use rand::Rng;

use flowkv_protocol::Args;
use flowkv_store::num::parse_i64;

use crate::command::{flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::info::REDIS_VERSION;

pub static COMMANDS: &[Command] = &[Command::new("lolwut", -1, Group::Server)
    .flags(READONLY | FAST)
    .handler(lolwut)
    .doc(
        "Display some computer art and the Redis version",
        "5.0.0",
        "",
    )];

/// The Schotter's parameters: output width in characters, squares per row, squares per
/// column — Redis's defaults and bounds.
const DEFAULTS: [i64; 3] = [66, 8, 12];
const BOUNDS: [(i64, i64); 3] = [(1, 1000), (1, 200), (1, 200)];
/// The tallest picture, in pixels (4 per text line): few squares per row in a wide output
/// would otherwise make squares hundreds of lines tall.
const MAX_HEIGHT: usize = 4000;

fn lolwut(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let version = if args.len() >= 3 && args.get(1).eq_ignore_ascii_case(b"version") {
        parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?
    } else {
        0
    };
    let text = if version == 5 {
        let mut p = DEFAULTS;
        for (i, v) in p.iter_mut().enumerate() {
            if let Some(a) = args.try_get(3 + i) {
                *v = parse_i64(a).ok_or(CmdError::NotInteger)?;
            }
            *v = (*v).clamp(BOUNDS[i].0, BOUNDS[i].1);
        }
        let mut art = schotter(p[0] as usize, p[1] as usize, p[2] as usize);
        art.push_str(&format!(
            "\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {REDIS_VERSION}\n"
        ));
        art
    } else {
        format!("Redis ver. {REDIS_VERSION}\n")
    };
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// A monochrome picture drawn straight into Braille cells: each character is 2 pixels wide
/// and 4 tall, one dot per pixel.
struct Canvas {
    cols: usize,
    rows: usize,
    cells: Vec<u8>,
}

impl Canvas {
    fn new(cols: usize, rows: usize) -> Canvas {
        Canvas {
            cols,
            rows,
            cells: vec![0; cols * rows],
        }
    }

    /// Sets the pixel at (x, y); pixels off the canvas are dropped.
    fn set(&mut self, x: i64, y: i64) {
        if x < 0 || y < 0 || x >= 2 * self.cols as i64 || y >= 4 * self.rows as i64 {
            return;
        }
        let (x, y) = (x as usize, y as usize);
        // Unicode's Braille dot numbering: dots 1-3 and 4-6 run down the two columns,
        // dots 7 and 8 are the bottom row.
        const DOT: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];
        self.cells[(y / 4) * self.cols + x / 2] |= DOT[x % 2][y % 4];
    }

    /// A straight line between two points, one pixel per step along its longer axis.
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64)) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0);
        for i in 0..=steps as i64 {
            let t = i as f64 / steps;
            self.set(
                (x0 + (x1 - x0) * t).round() as i64,
                (y0 + (y1 - y0) * t).round() as i64,
            );
        }
    }

    /// One line of text per 4 pixel rows.
    fn render(&self) -> String {
        let mut out = String::with_capacity(self.rows * (self.cols * 3 + 1));
        for row in self.cells.chunks(self.cols) {
            out.extend(
                row.iter()
                    .map(|&bits| char::from_u32(0x2800 + u32::from(bits)).unwrap_or(' ')),
            );
            out.push('\n');
        }
        out
    }
}

/// Schotter: `across` × `down` squares, each row turned and shifted at random a little more
/// than the one above, inside a one-square margin, `width` characters wide.
fn schotter(width: usize, across: usize, down: usize) -> String {
    let px_width = width * 2;
    let side = (px_width / (across + 2))
        .min(MAX_HEIGHT / (down + 2))
        .max(1);
    let px_height = side * (down + 2);
    let mut canvas = Canvas::new(width, px_height.div_ceil(4));
    // Centre the grid horizontally; the vertical margin is one square.
    let left = px_width.saturating_sub(side * across) as f64 / 2.0;
    let top = side as f64;
    let s = side as f64;
    let mut rng = rand::thread_rng();
    for r in 0..down {
        let disorder = r as f64 / down as f64;
        for c in 0..across {
            let angle = rng.gen_range(-1.0..=1.0) * disorder * std::f64::consts::FRAC_PI_4;
            let dx = rng.gen_range(-1.0..=1.0) * disorder * s / 2.0;
            let dy = rng.gen_range(-1.0..=1.0) * disorder * s / 2.0;
            let (cx, cy) = (
                left + (c as f64 + 0.5) * s + dx,
                top + (r as f64 + 0.5) * s + dy,
            );
            let (sin, cos) = angle.sin_cos();
            let h = s / 2.0;
            let corner = |(x, y): (f64, f64)| (cx + x * cos - y * sin, cy + x * sin + y * cos);
            let corners = [(-h, -h), (h, -h), (h, h), (-h, h)].map(corner);
            for i in 0..4 {
                canvas.line(corners[i], corners[(i + 1) % 4]);
            }
        }
    }
    canvas.render()
}
