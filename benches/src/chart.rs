//! A small SVG bar chart writer for the end-to-end report: one panel per measure (req/s, CPU
//! per request, latency percentiles), one group of bars per server, one bar per mode or
//! percentile. Plain SVG 1.1 with no scripts or external references, so it renders on GitHub
//! and in any browser.

use std::fmt::Write as _;

/// One bar: its label (under the group) and value.
#[derive(Debug, Clone)]
pub struct Bar {
    /// What the bar is (a mode, a percentile).
    pub label: String,
    /// Its value; `None` draws nothing and prints "–".
    pub value: Option<f64>,
}

/// A group of bars: one server.
#[derive(Debug, Clone)]
pub struct Group {
    /// The server's name.
    pub name: String,
    /// Its bars.
    pub bars: Vec<Bar>,
}

/// One panel: a measure across servers.
#[derive(Debug, Clone)]
pub struct Panel {
    /// The title, with its unit.
    pub title: String,
    /// The groups.
    pub groups: Vec<Group>,
}

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 260.0;
const MARGIN_LEFT: f64 = 70.0;
const PLOT_TOP: f64 = 40.0;
const PLOT_HEIGHT: f64 = 160.0;
const COLOURS: [&str; 4] = ["#4878d0", "#ee854a", "#6acc64", "#d65f5f"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The panels as one SVG document under `title`.
pub fn svg(title: &str, panels: &[Panel]) -> String {
    let height = 40.0 + PANEL_HEIGHT * panels.len() as f64;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for (i, panel) in panels.iter().enumerate() {
        panel_svg(&mut o, panel, 40.0 + PANEL_HEIGHT * i as f64);
    }
    o.push_str("</svg>\n");
    o
}

fn panel_svg(o: &mut String, panel: &Panel, top: f64) {
    let max = panel
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().filter_map(|b| b.value))
        .fold(0.0_f64, f64::max);
    let scale = if max > 0.0 {
        PLOT_HEIGHT / (max * 1.1)
    } else {
        0.0
    };
    let base = top + PLOT_TOP + PLOT_HEIGHT;
    let _ = writeln!(
        o,
        r#"<text x="{MARGIN_LEFT}" y="{}" font-size="13">{}</text>"#,
        top + 20.0,
        escape(&panel.title)
    );
    let _ = writeln!(
        o,
        r##"<line x1="{MARGIN_LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="#333"/>"##,
        WIDTH - 20.0
    );
    let groups = panel.groups.len().max(1) as f64;
    let group_width = (WIDTH - MARGIN_LEFT - 20.0) / groups;
    for (gi, group) in panel.groups.iter().enumerate() {
        let x0 = MARGIN_LEFT + group_width * gi as f64;
        let bars = group.bars.len().max(1) as f64;
        let bar_width = (group_width * 0.8 / bars).min(60.0);
        let start = x0 + (group_width - bar_width * bars) / 2.0;
        for (bi, bar) in group.bars.iter().enumerate() {
            let x = start + bar_width * bi as f64;
            let colour = COLOURS[bi % COLOURS.len()];
            let cx = x + bar_width / 2.0;
            match bar.value {
                Some(v) => {
                    let h = v * scale;
                    let _ = writeln!(
                        o,
                        r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{colour}"><title>{}: {}</title></rect>"#,
                        base - h,
                        bar_width - 2.0,
                        escape(&format!("{} {}", group.name, bar.label)),
                        number(v)
                    );
                    let _ = writeln!(
                        o,
                        r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                        base - h - 3.0,
                        number(v)
                    );
                }
                None => {
                    let _ = writeln!(
                        o,
                        r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">–</text>"#,
                        base - 3.0
                    );
                }
            }
            let _ = writeln!(
                o,
                r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                base + 12.0,
                escape(&bar.label)
            );
        }
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x0 + group_width / 2.0,
            base + 28.0,
            escape(&group.name)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_missing_ones_are_marked() {
        let panel = Panel {
            title: "req/s".into(),
            groups: vec![
                Group {
                    name: "nginx <1>".into(),
                    bars: vec![
                        Bar {
                            label: "keepalive".into(),
                            value: Some(100.0),
                        },
                        Bar {
                            label: "new-connection".into(),
                            value: None,
                        },
                    ],
                },
                Group {
                    name: "dcrgate".into(),
                    bars: vec![Bar {
                        label: "keepalive".into(),
                        value: Some(50.0),
                    }],
                },
            ],
        };
        let s = svg("run", &[panel]);
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.trim_end().ends_with("</svg>"));
        assert!(s.contains("nginx &lt;1&gt;"), "escaped: {s}");
        // 100 is the tallest bar: PLOT_HEIGHT / 1.1; 50 is half of it.
        let tall = format!("height=\"{:.1}\"", PLOT_HEIGHT / 1.1);
        let half = format!("height=\"{:.1}\"", PLOT_HEIGHT / 2.2);
        assert!(s.contains(&tall) && s.contains(&half), "{s}");
        assert!(s.contains(">–</text>"));
    }
}
