//! `phalanx jobs` and `phalanx queues`: the admin API (see `phalanx_k8s::admin`) as kubectl-style
//! tables, read as the identity of the user's kubeconfig.
//!
//! The request goes through a kube-rs client whose server is the admin port instead of the API
//! server: so the kubeconfig's credentials (a token, a token file, an exec plugin such as
//! `aws eks get-token`) are sent as `Authorization: Bearer`, exactly as kubectl would send them to
//! the API server, and the admin port checks them with a TokenReview.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use phalanx_model::ResourceId;
use serde_json::Value;

/// Where the admin API is and who asks.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The admin API's URL. Default: `$PHALANX_SERVER`; else, inside a cluster, the chart's
    /// Service `http://phalanx.kube-system.svc:10259`; else `http://127.0.0.1:10259` (after
    /// `kubectl -n kube-system port-forward svc/phalanx 10259`).
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// The kubeconfig whose user to ask as (default: `$KUBECONFIG`, else `~/.kube/config`).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// A PEM CA bundle to trust the admin port's certificate with (HTTPS).
    #[arg(long, global = true)]
    pub certificate_authority: Option<PathBuf>,
    /// Accept any certificate from the admin port (HTTPS; testing only).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A table with more columns (reason messages, estimate basis).
    Wide,
    /// The API's JSON.
    Json,
}

/// `phalanx jobs`.
#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    /// Only jobs of this queue (its path, `root.team-a`, or its Queue object's name).
    #[arg(long, short = 'q')]
    pub queue: Option<String>,
    /// Only jobs in this state.
    #[arg(long, value_parser = ["pending", "running", "completed", "failed"])]
    pub state: Option<String>,
    /// Output format (default: a table).
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<Output>,
    #[command(flatten)]
    pub connection: Connection,
}

/// `phalanx queues`.
#[derive(Debug, clap::Args)]
pub struct QueuesArgs {
    /// Output format (default: the tree as a table).
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<Output>,
    #[command(flatten)]
    pub connection: Connection,
}

/// The admin API's URL when none is given.
fn default_server() -> String {
    if let Ok(url) = std::env::var("PHALANX_SERVER") {
        return url;
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        "http://phalanx.kube-system.svc:10259".into()
    } else {
        "http://127.0.0.1:10259".into()
    }
}

/// GETs `path` from the admin API as the kubeconfig's user; the API's own error message
/// (`{"error": ...}`) when it refuses.
async fn get(c: &Connection, path: &str) -> Result<Value> {
    let server = c.server.clone().unwrap_or_else(default_server);
    let url: http::Uri = server
        .parse()
        .with_context(|| format!("--server {server:?} is not a URL"))?;
    let mut config = match crate::kube_config(c.kubeconfig.as_deref()).await {
        Ok(config) => config,
        // No kubeconfig at all: ask without credentials (an admin port with authentication
        // off answers; one with it on says what it needs).
        Err(_) if c.kubeconfig.is_none() => kube::Config::new(url.clone()),
        Err(e) => return Err(e),
    };
    config.cluster_url = url;
    // The API server's CA does not sign the admin port's certificate.
    config.root_cert = match &c.certificate_authority {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("--certificate-authority {}", path.display()))?;
            Some(pem_certificates(&pem).with_context(|| {
                format!(
                    "--certificate-authority {}: no PEM certificate",
                    path.display()
                )
            })?)
        }
        None => None,
    };
    config.accept_invalid_certs = c.insecure_skip_tls_verify;
    config.tls_server_name = None;
    let client = kube::Client::try_from(config).context("admin API client")?;
    let request = http::Request::get(path)
        .body(Vec::new())
        .context("admin API request")?;
    match client.request_text(request).await {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{server}{path}: the answer is not JSON")),
        Err(kube::Error::Api(status)) => {
            bail!(
                "{server}{path}: {} {}: {}",
                status.code,
                status.reason,
                status.message
            )
        }
        Err(e) => Err(e).with_context(|| format!("{server}{path}")),
    }
}

/// DER certificates of a PEM bundle (rustls' PEM reader; none is an error).
fn pem_certificates(pem: &[u8]) -> Option<Vec<Vec<u8>>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .ok()?;
    (!certs.is_empty()).then_some(certs)
}

/// `phalanx jobs`: the table (or JSON) to print.
pub async fn jobs(args: &JobsArgs) -> Result<String> {
    let mut query = Vec::new();
    if let Some(q) = &args.queue {
        query.push(format!("queue={}", encode(q)));
    }
    if let Some(s) = &args.state {
        query.push(format!("state={s}"));
    }
    let path = if query.is_empty() {
        "/api/v1/jobs".to_string()
    } else {
        format!("/api/v1/jobs?{}", query.join("&"))
    };
    let v = get(&args.connection, &path).await?;
    let now = now_ms();
    Ok(match args.output {
        Some(Output::Json) => serde_json::to_string_pretty(&v)?,
        wide => jobs_table(&v, now, wide == Some(Output::Wide)),
    })
}

/// `phalanx queues`: the table (or JSON) to print.
pub async fn queues(args: &QueuesArgs) -> Result<String> {
    let v = get(&args.connection, "/api/v1/queues").await?;
    Ok(match args.output {
        Some(Output::Json) => serde_json::to_string_pretty(&v)?,
        _ => queues_table(&v),
    })
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now_ms() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_millisecond()
}

/// Columns aligned as kubectl aligns them: left, three spaces apart, headers in capitals.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i < last {
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 3));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// A duration in seconds as kubectl prints ages (`45s`, `4m12s`, `3h5m`, `2d4h`).
fn age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// An amount of a named resource for people (`2.5` cpu, `64Gi`).
fn amount(resource: &str, v: i64) -> String {
    let id = match resource {
        "cpu" => ResourceId::CPU,
        "memory" => ResourceId::MEMORY,
        "ephemeral-storage" => ResourceId::EPHEMERAL_STORAGE,
        _ => return v.to_string(),
    };
    match id {
        ResourceId::CPU if v % 1000 != 0 && v % 100 == 0 => format!("{}", v as f64 / 1000.0),
        _ => phalanx_model::resource::format_amount(id, v),
    }
}

/// A resource map as `cpu=4,memory=16Gi,nvidia.com/gpu=2` (pods left out: every job has them).
fn resources(v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return "-".into();
    };
    let parts: Vec<String> = map
        .iter()
        .filter(|(k, _)| k.as_str() != "pods")
        .filter_map(|(k, v)| Some(format!("{k}={}", amount(k, v.as_i64()?))))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

/// An RFC 3339 time relative to now: `in 12m0s` (or `12m0s ago`), with the time in wide output.
fn relative(rfc3339: &str, now_ms: i64, wide: bool) -> String {
    let Ok(t) = rfc3339.parse::<k8s_openapi::jiff::Timestamp>() else {
        return rfc3339.to_string();
    };
    let d = (t.as_millisecond() - now_ms) as f64 / 1000.0;
    let rel = if d >= 0.0 {
        format!("in {}", age(d))
    } else {
        format!("{} ago", age(-d))
    };
    if wide { format!("{rel} ({t})") } else { rel }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The jobs table: pending jobs first, in line.
pub fn jobs_table(v: &Value, now_ms: i64, wide: bool) -> String {
    let empty = Vec::new();
    let jobs = v["jobs"].as_array().unwrap_or(&empty);
    if jobs.is_empty() {
        return "No jobs found.".into();
    }
    let mut header = vec![
        "QUEUE",
        "JOB",
        "STATE",
        "PODS",
        "REQUESTS",
        "WAIT",
        "POSITION",
        "ESTIMATED START",
        "REASON",
    ];
    if wide {
        header.extend(["BASIS", "MESSAGE"]);
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let pods = &j["pods"];
            let placed = ["assumed", "bound", "releasing"]
                .iter()
                .filter_map(|k| pods[*k].as_u64())
                .sum::<u64>();
            let min = j["minMember"].as_u64().unwrap_or(0);
            let pending = matches!(j["state"].as_str(), Some("Pending" | "Inqueue"));
            let start = match (&j["estimatedStart"], pending) {
                (Value::String(t), _) => relative(t, now_ms, wide),
                (_, true) => "unknown".into(),
                _ => "-".into(),
            };
            let mut row = vec![
                text(&j["queue"]),
                text(&j["name"]),
                text(&j["state"]),
                format!("{placed}/{min}"),
                resources(&j["requests"]),
                j["waitSeconds"].as_f64().map_or("-".into(), age),
                text(&j["position"]),
                start,
                text(&j["reason"]["label"]),
            ];
            if wide {
                row.push(text(&j["estimateBasis"]));
                row.push(text(&j["reason"]["message"]));
            }
            row
        })
        .collect();
    table(&header, &rows)
}

/// The queue tree: one line per queue and resource, children indented under their parent.
pub fn queues_table(v: &Value) -> String {
    let empty = Vec::new();
    let queues = v["queues"].as_array().unwrap_or(&empty);
    let header = [
        "QUEUE",
        "STATE",
        "WEIGHT",
        "JOBS (PENDING/RUNNING)",
        "RESOURCE",
        "ALLOCATED",
        "PENDING",
        "GUARANTEE",
        "DESERVED",
        "CAPABILITY",
        "SHARE",
    ];
    let mut rows = Vec::new();
    for q in queues {
        let name = q["name"].as_str().unwrap_or("");
        let depth = name.matches('.').count();
        let short = name.rsplit('.').next().unwrap_or(name);
        // Every resource any of its figures names, pods last.
        let mut names: BTreeMap<(bool, String), ()> = BTreeMap::new();
        for field in [
            "allocated",
            "pending",
            "guarantee",
            "deserved",
            "capability",
        ] {
            if let Some(m) = q[field].as_object() {
                for k in m.keys() {
                    names.insert((k == "pods", k.clone()), ());
                }
            }
        }
        if names.is_empty() {
            names.insert((false, "cpu".into()), ());
        }
        let unlimited = q["capability"].is_null();
        for (i, (_, r)) in names.keys().enumerate() {
            let figure = |field: &str| {
                q[field][r.as_str()]
                    .as_i64()
                    .map_or_else(|| "0".to_string(), |v| amount(r, v))
            };
            let first = i == 0;
            rows.push(vec![
                if first {
                    format!("{}{short}", "  ".repeat(depth))
                } else {
                    String::new()
                },
                if first {
                    text(&q["state"])
                } else {
                    String::new()
                },
                if first {
                    text(&q["weight"])
                } else {
                    String::new()
                },
                if first {
                    format!("{}/{}", text(&q["pendingJobs"]), text(&q["runningJobs"]))
                } else {
                    String::new()
                },
                r.clone(),
                figure("allocated"),
                figure("pending"),
                figure("guarantee"),
                figure("deserved"),
                if unlimited || q["capability"][r.as_str()].is_null() {
                    "unlimited".into()
                } else {
                    figure("capability")
                },
                if first {
                    q["dominantShare"]
                        .as_f64()
                        .map_or("-".into(), |s| format!("{:.0}%", s * 100.0))
                } else {
                    String::new()
                },
            ]);
        }
    }
    let mut out = table(&header, &rows);
    if let Some(e) = v["configurationError"].as_str() {
        out.push_str(&format!(
            "\n\nconfiguration error (older configuration in force): {e}"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_print_in_line_with_estimates_and_unknowns() {
        let v = json!({"jobs": [
            {"name": "ml/big", "queue": "root.ml", "state": "Pending", "pods": {"bound": 0},
             "minMember": 16, "requests": {"cpu": 64000, "memory": 274877906944u64, "pods": 16},
             "waitSeconds": 252.0, "position": 1, "estimatedStart": "2026-12-04T10:12:00Z",
             "estimateBasis": "reservation", "reason": {"label": "unschedulable", "message": "no room"}},
            {"name": "ml/next", "queue": "root.ml", "state": "Pending", "pods": {},
             "minMember": 2, "requests": {"cpu": 1500}, "waitSeconds": 10.0, "position": 2,
             "estimatedStart": null, "estimateBasis": null, "reason": null},
            {"name": "ml/run", "queue": "root.ml", "state": "Running", "pods": {"bound": 4},
             "minMember": 4, "requests": {"nvidia.com/gpu": 8}, "waitSeconds": null,
             "position": null, "estimatedStart": null, "reason": null}
        ]});
        let now = "2026-12-04T10:00:00Z"
            .parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let t = jobs_table(&v, now, false);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("QUEUE"), "{t}");
        assert!(
            lines[1].contains("ml/big") && lines[1].contains("0/16"),
            "{t}"
        );
        assert!(lines[1].contains("cpu=64,memory=256Gi"), "{t}");
        assert!(
            lines[1].contains("4m12s") && lines[1].contains("in 12m0s"),
            "{t}"
        );
        assert!(
            lines[2].contains("cpu=1.5") && lines[2].contains("unknown"),
            "{t}"
        );
        // A running job has no estimate and no wait.
        assert!(
            lines[3].contains("4/4") && !lines[3].contains("unknown"),
            "{t}"
        );
        // Columns line up: every row's JOB starts where the header's does.
        let col = lines[0].find("JOB").unwrap();
        assert!(lines[1..].iter().all(|l| &l[col..col + 3] == "ml/"), "{t}");
        let wide = jobs_table(&v, now, true);
        assert!(
            wide.contains("reservation") && wide.contains("no room"),
            "{wide}"
        );
        assert_eq!(
            jobs_table(&json!({"jobs": []}), now, false),
            "No jobs found."
        );
    }

    #[test]
    fn queues_print_as_a_tree_with_every_figure() {
        let v = json!({"queues": [
            {"name": "root", "state": "Open", "weight": 1, "pendingJobs": 1, "runningJobs": 1,
             "allocated": {"cpu": 8000}, "deserved": {"cpu": 16000}, "guarantee": {},
             "capability": null, "pending": {"cpu": 4000}, "dominantShare": 0.5},
            {"name": "root.ml", "state": "Closed", "weight": 3, "pendingJobs": 1,
             "runningJobs": 1, "allocated": {"cpu": 8000, "memory": 1073741824},
             "deserved": {"cpu": 12000}, "guarantee": {"cpu": 2000},
             "capability": {"cpu": 10000}, "pending": {}, "dominantShare": 0.5}
        ], "configurationError": "Queue x: spec.weight: bad"});
        let t = queues_table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[1].starts_with("root ") && lines[1].contains("unlimited"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("  ml ") && lines[2].contains("Closed"),
            "{t}"
        );
        // cpu: allocated 8, pending 0, guarantee 2, deserved 12, capability 10.
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(&cells[4..10], ["cpu", "8", "0", "2", "12", "10"], "{t}");
        assert!(
            lines[3].trim_start().starts_with("memory") && lines[3].contains("1Gi"),
            "{t}"
        );
        // memory has no cap of its own in a capped queue.
        assert!(lines[3].contains("unlimited"), "{t}");
        assert!(t.contains("configuration error"), "{t}");
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(45.0), "45s");
        assert_eq!(age(252.0), "4m12s");
        assert_eq!(age(11_100.0), "3h5m");
        assert_eq!(age(187_200.0), "2d4h");
        assert_eq!(encode("root.a b"), "root.a%20b");
    }
}
