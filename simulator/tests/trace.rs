//! The native trace reader: every rule of trace-format.md, and errors that name the file, line
//! and field.

use phalanx_model::{ResourceId, Time};
use phalanx_simulator::generator::{GenSpec, generate};
use phalanx_simulator::trace::{self, Input, TraceError};

fn read(text: &str) -> Result<trace::Scenario, TraceError> {
    trace::read(text.as_bytes(), "t.jsonl")
}

fn err(text: &str) -> String {
    match read(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const NODE: &str =
    r#"{"kind":"node","name":"n1","resources":{"cpu":"8","memory":"32Gi","nvidia.com/gpu":8}}"#;

#[test]
fn the_contract_example_reads() {
    let text = r#"{"kind":"queue","name":"root.research","weight":2,"guarantee":{"nvidia.com/gpu":16},"deserved":{"nvidia.com/gpu":32},"capability":{"nvidia.com/gpu":64},"reclaimable":true}
{"kind":"node","name":"gpu-0001","resources":{"cpu":"96","memory":"768Gi","nvidia.com/gpu":8,"pods":110},"labels":{"gpu-model":"A100"},"taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}]}
{"kind":"job","time":12.5,"name":"team-a/train-1","queue":"root.research","priority":100,"min_member":8,"depends_on":["team-a/prep-1"],"tasks":[{"name":"worker","replicas":8,"requests":{"cpu":"8","memory":"64Gi","nvidia.com/gpu":1},"duration":3600,"node_selector":{"gpu-model":"A100"},"tolerations":[{"key":"dedicated","operator":"Equal","value":"gpu","effect":"NoSchedule"}]}]}
{"kind":"job","name":"team-a/prep-1","tasks":[{"name":"prep","replicas":1,"requests":{"cpu":"500m"},"duration":60,"outcome":"failed"}]}
{"kind":"node_down","time":500,"name":"gpu-0001"}
{"kind":"node_up","time":900,"name":"gpu-0001"}
{"kind":"job_delete","time":1200,"name":"team-a/train-1"}
"#;
    let sc = read(text).unwrap();
    assert_eq!(sc.queues.len(), 1);
    assert_eq!(sc.queues[0].weight, 2);
    assert_eq!(sc.jobs.len(), 2);
    // Arrival order: prep-1 (time 0) before train-1 (12.5).
    assert_eq!(sc.jobs[0].job.name, "team-a/prep-1");
    assert_eq!(sc.jobs[0].job.queue, "root.default");
    assert_eq!(sc.jobs[0].job.min_member, 1, "defaults to the replicas");
    assert_eq!(sc.jobs[0].fails, vec![true]);
    assert_eq!(
        sc.jobs[0].job.tasks[0].pod.requests.get(ResourceId::CPU),
        500
    );
    let train = &sc.jobs[1].job;
    assert_eq!(train.submit_time, Time(12_500));
    assert_eq!(train.priority, 100);
    assert_eq!(train.tasks[0].pod.requests.get(ResourceId::GPU), 1);
    let node = sc.initial_nodes().next().unwrap();
    assert_eq!(node.allocatable.get(ResourceId::PODS), 110);
    assert_eq!(node.taints.len(), 1);
    let kinds: Vec<&str> = sc
        .events
        .iter()
        .map(|(_, i)| match i {
            Input::Node(_) => "node",
            Input::Submit(_) => "submit",
            Input::NodeDown(_) => "down",
            Input::NodeUp(_) => "up",
            Input::JobDelete(_) => "delete",
        })
        .collect();
    assert_eq!(kinds, ["node", "submit", "submit", "down", "up", "delete"]);
}

#[test]
fn pods_default_to_110_and_absent_resources_are_zero() {
    let sc = read(NODE).unwrap();
    let n = sc.initial_nodes().next().unwrap();
    assert_eq!(n.allocatable.get(ResourceId::PODS), 110);
    assert_eq!(n.allocatable.get(ResourceId::EPHEMERAL_STORAGE), 0);
}

#[test]
fn errors_name_file_line_and_field() {
    let job = |extra: &str| {
        format!(
            "{NODE}\n{{\"kind\":\"job\",\"name\":\"a\",{extra}\"tasks\":[{{\"name\":\"w\",\"replicas\":2,\"requests\":{{\"cpu\":1}},\"duration\":5}}]}}"
        )
    };
    assert_eq!(
        err(&format!(
            "{NODE}\n{{\"kind\":\"job\",\"name\":\"a\",\"tasks\":[{{\"name\":\"w\",\"replicas\":2,\"requests\":{{\"cpu\":\"lots\"}},\"duration\":5}}]}}"
        )),
        "t.jsonl:2: field `tasks[0].requests.cpu`: quantity \"lots\" is invalid: unexpected character 'l'"
            .replace("quantity \"lots\" is invalid: unexpected character 'l'", &{
                phalanx_model::Quantity::parse("lots").unwrap_err().to_string()
            })
    );
    let e = err(&job("\"min_member\":3,"));
    assert!(e.starts_with("t.jsonl:2: field `min_member`:"), "{e}");
    let e = err(&job("\"queue\":\"root.nope\","));
    assert!(
        e.starts_with("t.jsonl:2: field `queue`: unknown queue root.nope"),
        "{e}"
    );
    let e = err(&job("\"time\":-1,"));
    assert!(e.starts_with("t.jsonl:2: field `time`:"), "{e}");
    let e = err(&job("\"depends_on\":[\"x\"],"));
    assert_eq!(
        e,
        "t.jsonl:2: field `depends_on[0]`: unknown job x (no job record defines it)"
    );
    let e = err(&job("\"replica\":1,"));
    assert!(
        e.starts_with("t.jsonl:2: field `replica`: unknown field"),
        "{e}"
    );
    let e = err(&format!(
        "{NODE}\n\n{{\"kind\":\"job\",\"name\":\"a\",\"tasks\":[{{\"name\":\"w\",\"replicas\":\"two\",\"requests\":{{}},\"duration\":5}}]}}"
    ));
    assert!(
        e.starts_with("t.jsonl:3: field `tasks[0].replicas`:"),
        "{e}"
    );
    assert!(err("{\"kind\":\"rack\"}").starts_with("t.jsonl:1: field `kind`: unknown kind"));
    assert!(err("not json").starts_with("t.jsonl:1: not a JSON object"));
    assert!(err("{\"name\":\"x\"}").starts_with("t.jsonl:1: field `kind`: missing"));
    let e = err(&format!("{NODE}\n{NODE}"));
    assert_eq!(
        e,
        "t.jsonl:2: field `name`: node n1 is already defined on line 1"
    );
    let e = err(&format!(
        "{NODE}\n{{\"kind\":\"node_down\",\"time\":3,\"name\":\"n2\"}}"
    ));
    assert_eq!(e, "t.jsonl:2: field `name`: unknown node n2");
    let e = err(concat!(
        r#"{"kind":"node","time":50,"name":"late","resources":{}}"#,
        "\n",
        r#"{"kind":"node_down","time":3,"name":"late"}"#
    ));
    assert_eq!(
        e,
        "t.jsonl:2: field `time`: node_down of node late at 3.000s, before it joins at 50.000s (line 1)"
    );
    let e = err("{\"kind\":\"queue\",\"name\":\"team\"}");
    assert!(
        e.starts_with("t.jsonl:1: field `name`: queue \"team\""),
        "{e}"
    );
    let e = err(&format!(
        "{NODE}\n{{\"kind\":\"job\",\"name\":\"a\",\"tasks\":[{{\"name\":\"w\",\"replicas\":1,\"requests\":{{}},\"duration\":-5}}]}}"
    ));
    assert!(
        e.starts_with("t.jsonl:2: field `tasks[0].duration`:"),
        "{e}"
    );
    for bad in ["0", "-3"] {
        let e = err(&format!(
            "{NODE}\n{{\"kind\":\"job\",\"name\":\"a\",\"deadline\":{bad},\"tasks\":[{{\"name\":\"w\",\"replicas\":1,\"requests\":{{}},\"duration\":1}}]}}"
        ));
        assert_eq!(
            e,
            format!(
                "t.jsonl:2: field `deadline`: {bad} is not a deadline (seconds after submission, above 0)"
            )
        );
    }
}

#[test]
fn dependency_cycles_are_named_in_full() {
    let job = |name: &str, deps: &str| {
        format!(
            "{{\"kind\":\"job\",\"name\":\"{name}\",\"depends_on\":[{deps}],\"tasks\":[{{\"name\":\"w\",\"replicas\":1,\"requests\":{{}},\"duration\":1}}]}}"
        )
    };
    let text = [
        NODE.to_string(),
        job("ok", ""),
        job("a", "\"b\""),
        job("b", "\"c\",\"ok\""),
        job("c", "\"a\""),
    ]
    .join("\n");
    assert_eq!(
        err(&text),
        "t.jsonl:3: field `depends_on`: dependency cycle: a -> b -> c -> a"
    );
    let e = err(&[NODE.to_string(), job("s", "\"s\"")].join("\n"));
    assert!(
        e.contains("depends on itself") || e.contains("s -> s"),
        "{e}"
    );
}

#[test]
fn queue_parents_are_implicit_and_jobs_go_into_leaves() {
    let text = format!(
        "{{\"kind\":\"queue\",\"name\":\"root.a.b\",\"weight\":3}}\n{NODE}\n{{\"kind\":\"job\",\"name\":\"j\",\"queue\":\"root.a\",\"tasks\":[{{\"name\":\"w\",\"replicas\":1,\"requests\":{{}},\"duration\":1}}]}}"
    );
    let e = err(&text);
    assert_eq!(
        e,
        "t.jsonl:3: field `queue`: queue root.a has child queues (root.a.b); jobs go into leaf queues"
    );
    let sc = read(&text.replace("\"queue\":\"root.a\"", "\"queue\":\"root.a.b\"")).unwrap();
    assert_eq!(sc.jobs[0].job.queue, "root.a.b");
}

#[test]
fn queue_ordering_and_preemption_extend_the_record_and_read_back() {
    let text = format!(
        "{{\"kind\":\"queue\",\"name\":\"root.a\",\"ordering\":\"strict-fifo\",\"preemption\":false}}\n{{\"kind\":\"queue\",\"name\":\"root.b\"}}\n{NODE}"
    );
    let sc = read(&text).unwrap();
    let a = sc.queues.iter().find(|q| q.name == "root.a").unwrap();
    assert_eq!(a.ordering, phalanx_model::QueueOrdering::StrictFifo);
    assert!(!a.preemption);
    let b = sc.queues.iter().find(|q| q.name == "root.b").unwrap();
    assert_eq!(b.ordering, phalanx_model::QueueOrdering::BestEffort);
    assert!(b.preemption);
    let mut buf = Vec::new();
    trace::write_records(&mut buf, &trace::to_records(&sc)).unwrap();
    assert_eq!(
        trace::read(buf.as_slice(), "back.jsonl").unwrap().queues,
        sc.queues
    );
    let e = err(&text.replace("strict-fifo", "fifo"));
    assert!(e.starts_with("t.jsonl:1:"), "{e}");
}

#[test]
fn written_scenarios_read_back_the_same() {
    let sc = generate(&GenSpec {
        deadlines: 0.5,
        ..GenSpec::new(20, 400, 5)
    });
    assert!(sc.jobs.iter().any(|j| j.deadline.is_some()));
    let mut buf = Vec::new();
    trace::write_records(&mut buf, &trace::to_records(&sc)).unwrap();
    let back = trace::read(buf.as_slice(), "gen.jsonl").unwrap();
    assert_eq!(back.queues, sc.queues);
    assert_eq!(back.jobs.len(), sc.jobs.len());
    for (a, b) in back.jobs.iter().zip(&sc.jobs) {
        let mut want = b.job.clone();
        for t in &mut want.tasks {
            t.pod.requests.set(ResourceId::PODS, 0);
        }
        assert_eq!(a.job, want);
        assert_eq!(a.fails, b.fails);
        assert_eq!(a.deadline, b.deadline);
    }
    assert_eq!(back.events.len(), sc.events.len());
}
