//! The text a Prometheus scraper reads: metric families in the Prometheus text format 0.0.4,
//! or in OpenMetrics 1.0 text when the scraper asks for it.
//!
//! The two differ in a few places only, all handled here: a counter's family is named
//! `x_total` in 0.0.4 and `x` in OpenMetrics (its sample is `x_total` in both), OpenMetrics
//! escapes `"` in help text and ends with `# EOF`. Numbers are integers or Rust's shortest
//! round-tripping float (`0.0001`, `2.5`, `1.0`), which both formats read.

use std::fmt::Write as _;

/// Which text format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it lists
    /// `application/openmetrics-text` (with a non-zero quality), else 0.0.4.
    pub(crate) fn from_accept(accept: Option<&str>) -> Format {
        let asks = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or("");
                let refused = parts.any(|p| {
                    p.strip_prefix("q=")
                        .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
                });
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if asks {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The `Content-Type` of the text.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// What kind of metric a family holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Label names and values of one sample.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// One sample (or, for a histogram, one labelled series of buckets).
pub(crate) enum Sample {
    Value(Labels, u64),
    Histogram {
        labels: Labels,
        /// Upper bounds in seconds with the cumulative count at each; `+Inf` is added.
        buckets: Vec<(f64, u64)>,
        sum: f64,
        count: u64,
    },
}

/// A metric family: its name (without `_total` for a counter), help and samples.
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: Kind,
    pub(crate) samples: Vec<Sample>,
}

/// Writes `families` in `format`.
pub(crate) fn encode(families: &[Family], format: Format) -> String {
    let mut out = String::with_capacity(4096);
    for family in families {
        let suffix = if family.kind == Kind::Counter {
            "_total"
        } else {
            ""
        };
        let declared = match format {
            Format::Prometheus => format!("{}{suffix}", family.name),
            Format::OpenMetrics => family.name.to_owned(),
        };
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(
            out,
            "# HELP {declared} {}",
            escape_help(family.help, format)
        );
        let _ = writeln!(out, "# TYPE {declared} {kind}");
        for sample in &family.samples {
            match sample {
                Sample::Value(labels, value) => {
                    line(&mut out, family.name, suffix, labels, None);
                    let _ = writeln!(out, " {value}");
                }
                Sample::Histogram {
                    labels,
                    buckets,
                    sum,
                    count,
                } => {
                    for (bound, cumulative) in buckets {
                        line(
                            &mut out,
                            family.name,
                            "_bucket",
                            labels,
                            Some(&float(*bound)),
                        );
                        let _ = writeln!(out, " {cumulative}");
                    }
                    line(&mut out, family.name, "_bucket", labels, Some("+Inf"));
                    let _ = writeln!(out, " {count}");
                    line(&mut out, family.name, "_sum", labels, None);
                    let _ = writeln!(out, " {}", float(*sum));
                    line(&mut out, family.name, "_count", labels, None);
                    let _ = writeln!(out, " {count}");
                }
            }
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// A sample's name and labels, up to the value.
fn line(out: &mut String, name: &str, suffix: &str, labels: &Labels, le: Option<&str>) {
    out.push_str(name);
    out.push_str(suffix);
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let le = le.map(|le| ("le", le));
    let all = labels.iter().map(|(n, v)| (*n, v.as_str())).chain(le);
    for (i, (label, value)) in all.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(label);
        out.push_str("=\"");
        escape_label(out, value);
        out.push('"');
    }
    out.push('}');
}

/// A float in a form both formats read: `1.0`, `0.0001`, `2.5`.
fn float(value: f64) -> String {
    format!("{value:?}")
}

fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str, format: Format) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families() -> Vec<Family> {
        vec![
            Family {
                name: "t_requests",
                help: "Requests \"answered\".",
                kind: Kind::Counter,
                samples: vec![Sample::Value(
                    vec![
                        ("route", "/a\"b\\c\nd".to_owned()),
                        ("status", "2xx".to_owned()),
                    ],
                    7,
                )],
            },
            Family {
                name: "t_open",
                help: "Open.",
                kind: Kind::Gauge,
                samples: vec![Sample::Value(Vec::new(), 3)],
            },
            Family {
                name: "t_seconds",
                help: "Latency.",
                kind: Kind::Histogram,
                samples: vec![Sample::Histogram {
                    labels: vec![("route", "/a".to_owned())],
                    buckets: vec![(0.0001, 1), (1.0, 2)],
                    sum: 0.5,
                    count: 3,
                }],
            },
        ]
    }

    #[test]
    fn prometheus_text_names_counters_with_total_and_has_no_eof() {
        let text = encode(&families(), Format::Prometheus);
        let expected = "\
# HELP t_requests_total Requests \"answered\".
# TYPE t_requests_total counter
t_requests_total{route=\"/a\\\"b\\\\c\\nd\",status=\"2xx\"} 7
# HELP t_open Open.
# TYPE t_open gauge
t_open 3
# HELP t_seconds Latency.
# TYPE t_seconds histogram
t_seconds_bucket{route=\"/a\",le=\"0.0001\"} 1
t_seconds_bucket{route=\"/a\",le=\"1.0\"} 2
t_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3
t_seconds_sum{route=\"/a\"} 0.5
t_seconds_count{route=\"/a\"} 3
";
        assert_eq!(text, expected);
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let text = encode(&families(), Format::OpenMetrics);
        assert!(text.starts_with("# HELP t_requests Requests \\\"answered\\\".\n# TYPE t_requests counter\nt_requests_total{"), "{text}");
        assert!(
            text.ends_with("t_seconds_count{route=\"/a\"} 3\n# EOF\n"),
            "{text}"
        );
    }

    #[test]
    fn accept_picks_openmetrics_only_when_asked() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
        let prometheus_default = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(
            Format::from_accept(Some(prometheus_default)),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text; q=0, text/plain")),
            Format::Prometheus
        );
    }
}
