//! Scale-out on PostgreSQL: API, scheduler and share nodes as separate `shoal serve`
//! processes, each on its own loopback address, sharing one database (a fresh schema per
//! test). Skipped, with a note, when `TEST_DATABASE_URL` is unset.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_store::Store;
use shoal_store::testing::{ForTest, TEST_DATABASE_URL_ENV, TestDb};

use super::{Served, call, serve_until};

/// A fresh PostgreSQL schema, or `None` (with a note) when no server is configured.
async fn pg_test_db(test: &str) -> Option<TestDb<dyn Store>> {
    if std::env::var_os(TEST_DATABASE_URL_ENV).is_none() {
        eprintln!("skipping {test}: it needs PostgreSQL and {TEST_DATABASE_URL_ENV} is not set");
        return None;
    }
    Some(shoal_store::PgStore::for_test().await?.into_dyn())
}

/// One node of a test cluster.
struct NodeSpec<'a> {
    /// `host` of the node (its services' host name).
    host: &'a str,
    roles: &'a [&'a str],
    /// Loopback address the node binds (the API only listens when the api role runs).
    ip: &'a str,
    /// Availability zone of the node's one `dummy` back end (share role only).
    zone: Option<&'a str>,
}

/// The `[backends.dummy]` options of the share nodes: each promotion takes 200 ms on the
/// back end, so two overlapping promotions of one share would show.
const SLOW_PROMOTIONS: &str = "[backends.dummy.delays]\npromote_replica = \"200ms\"\n";

/// Writes the node's config file: noauth, the shared database, and `extra` TOML appended
/// (sections such as `[operations]`).
fn node_config(dir: &Path, database_url: &str, node: &NodeSpec<'_>, extra: &str) -> PathBuf {
    let data = dir.join(node.host);
    let roles: Vec<String> = node.roles.iter().map(|r| format!("\"{r}\"")).collect();
    let mut text = format!(
        "host = \"{}\"\ndata_dir = \"{}\"\ndatabase_url = \"{database_url}\"\nroles = [{}]\n\
         [api]\nauth_strategy = \"noauth\"\nlisten = \"{}:0\"\n\
         [quota]\nshares = -1\ngigabytes = -1\nshare_replicas = -1\nreplica_gigabytes = -1\n",
        node.host,
        data.display(),
        roles.join(", "),
        node.ip,
    );
    text.push_str(extra);
    if let Some(zone) = node.zone {
        text.push_str(&format!(
            "\n[[backends]]\nname = \"dummy\"\ndriver = \"dummy\"\navailability_zone = \"{zone}\"\n\
             replication_domain = \"scaleout\"\nreplication_type = \"readable\"\n\
             [[backends.pools]]\nname = \"pool1\"\ntotal_capacity_gb = 10000\n{SLOW_PROMOTIONS}"
        ));
    }
    let path = dir.join(format!("{}.toml", node.host));
    std::fs::write(&path, text).expect("write node config");
    path
}

/// Starts the node and waits until it runs: its API listens, or its workers started.
fn start_node(dir: &Path, database_url: &str, node: &NodeSpec<'_>, extra: &str) -> Served {
    let config = node_config(dir, database_url, node, extra);
    let config = config.to_str().expect("utf-8 path");
    let api = node.roles.contains(&"api");
    let marker = if api {
        super::API_LISTENING
    } else {
        "operation workers started"
    };
    let (mut served, line) = serve_until(&["--config", config], &[], marker);
    if api {
        let addr = line
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("address after the marker");
        assert!(
            addr.starts_with(&format!("{}:", node.ip)),
            "{} listens on {addr}",
            node.host
        );
        served.base = format!("http://{addr}");
    }
    served
}

/// Waits (bounded) until the database shows `services` services up and `pools` pools, as
/// seen through the API at `base`.
async fn wait_for_cluster(base: &str, services: usize, pools: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, listed) = call(
            reqwest::Method::GET,
            &format!("{base}/v2/services"),
            "2.65",
            None,
        )
        .await;
        let up = listed["services"]
            .as_array()
            .map_or(0, |s| s.iter().filter(|s| s["state"] == "up").count());
        let (_, listed) = call(
            reqwest::Method::GET,
            &format!("{base}/v2/scheduler-stats/pools"),
            "2.65",
            None,
        )
        .await;
        let seen = listed["pools"].as_array().map_or(0, Vec::len);
        if up == services && seen == pools {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cluster not up after 30 s: {up} services up, {seen} pools"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates the share type `name` through `base` (replicated when `replication` is given).
async fn create_share_type(base: &str, name: &str, replication: Option<&str>) {
    let mut specs = json!({"driver_handles_share_servers": false});
    if let Some(replication) = replication {
        specs["replication_type"] = json!(replication);
    }
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{base}/v2/types"),
        "2.65",
        Some(json!({"share_type": {"name": name, "extra_specs": specs}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Polls `GET url` until `done(status, body)` holds, failing after `within`.
async fn wait_for(
    url: &str,
    within: Duration,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = call(reqwest::Method::GET, url, "2.65", None).await;
        if done(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not reached within {within:?}; last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// API, scheduler and share roles on three processes that poll only once an hour: a share
/// still goes through scheduling and creation (two hand-overs between nodes) and deletion
/// at once, because every enqueue notifies the other nodes through PostgreSQL.
#[tokio::test]
async fn nodes_wake_each_other_through_postgres_while_polling_hourly() {
    let Some(db) = pg_test_db("nodes_wake_each_other_through_postgres_while_polling_hourly").await
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.database_url().to_owned();
    let hourly = "[operations]\npoll_interval = \"1h\"\n";
    let nodes: Vec<Served> = [
        NodeSpec {
            host: "api1",
            roles: &["api"],
            ip: "127.0.0.2",
            zone: None,
        },
        NodeSpec {
            host: "sched1",
            roles: &["scheduler"],
            ip: "127.0.0.3",
            zone: None,
        },
        NodeSpec {
            host: "n1",
            roles: &["share"],
            ip: "127.0.0.4",
            zone: Some("az1"),
        },
    ]
    .iter()
    .map(|node| start_node(dir.path(), &url, node, hourly))
    .collect();
    let base = nodes[0].base.clone();
    wait_for_cluster(&base, 2, 1).await;
    create_share_type(&base, "plain", None).await;

    let started = Instant::now();
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{base}/v2/shares"),
        "2.65",
        Some(json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "plain"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["share"]["id"].as_str().expect("share id").to_owned();
    let share_url = format!("{base}/v2/shares/{id}");
    // Far below the hour a poll would take: only wake-ups can have moved it.
    let share = wait_for(&share_url, Duration::from_secs(30), "available", |_, b| {
        b["share"]["status"] != "creating"
    })
    .await;
    assert_eq!(share["share"]["status"], "available", "{share}");
    assert_eq!(share["share"]["host"], "n1@dummy#pool1");
    let (status, _) = call(reqwest::Method::DELETE, &share_url, "2.65", None).await;
    assert_eq!(status, 202);
    wait_for(&share_url, Duration::from_secs(30), "deleted", |s, _| {
        s == 404
    })
    .await;
    eprintln!(
        "create, schedule, create on the back end and delete took {:?}",
        started.elapsed()
    );
    assert_eq!(db.store().count_unfinished_operations().await.unwrap(), 0);
    drop(nodes);
    db.finish().await;
}

/// One call as the noauth admin at microversion 2.65 on a shared client.
async fn api(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client
        .request(method, &url)
        .header("X-OpenStack-Manila-API-Version", "2.65")
        .header("X-Auth-Token", "admin:admin");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every replica the admin project has, from `GET /v2/share-replicas/detail`.
async fn list_replicas(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let (status, body) = api(
        client,
        reqwest::Method::GET,
        format!("{base}/v2/share-replicas/detail"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["share_replicas"].as_array().expect("replicas").clone()
}

/// Statuses a replica (share instance) settles in; anything else is work in progress.
const SETTLED: [&str; 2] = ["available", "error"];

/// Polls the replica list until `done` holds for it, failing after `within`.
async fn wait_for_replicas(
    client: &reqwest::Client,
    base: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let replicas = list_replicas(client, base).await;
        if done(&replicas) {
            return replicas;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not reached within {within:?}; replicas: {replicas:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the test does to one share once its three replicas exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Promote both secondaries at the same moment, one through each API node.
    RacePromotes,
    /// Promote one secondary.
    Promote,
    /// Delete one secondary.
    DeleteReplica,
    /// Delete both secondaries (one through each API node), then the share.
    DeleteShare,
}

impl Plan {
    fn of(index: usize) -> Self {
        match index % 4 {
            0 => Plan::RacePromotes,
            1 => Plan::Promote,
            2 => Plan::DeleteReplica,
            _ => Plan::DeleteShare,
        }
    }
}

/// Two API nodes, two schedulers and three share nodes (az1, az2, az3), seven processes
/// on one PostgreSQL, under concurrent creates, promotes (two of them racing on one share
/// through different API nodes) and deletes spread over both API nodes. Afterwards every
/// share and replica has settled, each share has exactly one active replica, no instance
/// was placed or created twice, every operation is `done` and ran once (retries only for
/// the busy per-share lock), and the promotions of one share never overlapped on the back
/// ends (the dummy reports each promotion as a sync spanning the call, kept in
/// `replication_history`).
#[tokio::test]
async fn two_api_nodes_two_schedulers_three_share_nodes_under_concurrent_load() {
    const SHARES: usize = 30;
    const ZONES: [&str; 3] = ["az1", "az2", "az3"];
    let Some(db) =
        pg_test_db("two_api_nodes_two_schedulers_three_share_nodes_under_concurrent_load").await
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.database_url().to_owned();
    // A busy share lock is retried one poll interval later.
    let extra = "[operations]\npoll_interval = \"300ms\"\n";
    let specs = [
        ("api1", &["api"][..], "127.0.0.2", None),
        ("api2", &["api"][..], "127.0.0.3", None),
        ("sched1", &["scheduler"][..], "127.0.0.4", None),
        ("sched2", &["scheduler"][..], "127.0.0.5", None),
        ("n1", &["share"][..], "127.0.0.6", Some("az1")),
        ("n2", &["share"][..], "127.0.0.7", Some("az2")),
        ("n3", &["share"][..], "127.0.0.8", Some("az3")),
    ];
    let mut nodes = Vec::new();
    for (host, roles, ip, zone) in specs {
        let node = NodeSpec {
            host,
            roles,
            ip,
            zone,
        };
        nodes.push(start_node(dir.path(), &url, &node, extra));
    }
    let bases = [nodes[0].base.clone(), nodes[1].base.clone()];
    let client = reqwest::Client::new();
    wait_for_cluster(&bases[0], 5, 3).await;
    create_share_type(&bases[0], "replicated", Some("readable")).await;
    let started = Instant::now();

    // 1. Shares, spread over the zones and both API nodes, all at once.
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..SHARES {
        let (client, base) = (client.clone(), bases[i % 2].clone());
        creates.spawn(async move {
            let body = json!({"share": {"share_proto": "NFS", "size": 1,
                "share_type": "replicated", "name": format!("s{i}"),
                "availability_zone": ZONES[i % 3]}});
            let (status, body) = api(
                &client,
                reqwest::Method::POST,
                format!("{base}/v2/shares"),
                Some(body),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            (i, body["share"]["id"].as_str().expect("id").to_owned())
        });
    }
    let mut shares = vec![String::new(); SHARES];
    while let Some(created) = creates.join_next().await {
        let (i, id) = created.expect("create task");
        shares[i] = id;
    }
    wait_for_replicas(
        &client,
        &bases[1],
        Duration::from_secs(60),
        "shares available",
        |r| r.len() == SHARES && r.iter().all(|r| r["status"] == "available"),
    )
    .await;

    // 2. Two replicas per share, in the other two zones, all at once.
    let mut adds = tokio::task::JoinSet::new();
    for (i, share) in shares.iter().enumerate() {
        for (k, zone) in ZONES.iter().enumerate().filter(|(k, _)| *k != i % 3) {
            let (client, base, share, zone) = (
                client.clone(),
                bases[(i + k) % 2].clone(),
                share.clone(),
                *zone,
            );
            adds.spawn(async move {
                let body = json!({"share_replica": {"share_id": share, "availability_zone": zone}});
                let (status, body) = api(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/v2/share-replicas"),
                    Some(body),
                )
                .await;
                assert!((200..300).contains(&status), "{status}: {body}");
            });
        }
    }
    while let Some(added) = adds.join_next().await {
        added.expect("replica task");
    }
    let replicas = wait_for_replicas(
        &client,
        &bases[0],
        Duration::from_secs(60),
        "replicas available",
        |r| {
            r.len() == 3 * SHARES
                && r.iter().all(|r| {
                    r["status"] == "available"
                        && (r["replica_state"] == "active" || r["replica_state"] == "in_sync")
                })
        },
    )
    .await;
    let secondaries = |share: &str| -> Vec<String> {
        replicas
            .iter()
            .filter(|r| r["share_id"] == share && r["replica_state"] != "active")
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    };

    // 3. Promotes and deletes, everything at once, over both API nodes.
    let mut actions = tokio::task::JoinSet::new();
    for (i, share) in shares.iter().enumerate() {
        let plan = Plan::of(i);
        let targets = secondaries(share);
        assert_eq!(targets.len(), 2, "share {share}: {replicas:#?}");
        let (client, bases, share) = (client.clone(), bases.clone(), share.clone());
        actions.spawn(async move {
            let promote = |base: &str, replica: &str| {
                api(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/v2/share-replicas/{replica}/action"),
                    Some(json!({"promote": null})),
                )
            };
            let delete = |base: &str, replica: &str| {
                api(
                    &client,
                    reqwest::Method::DELETE,
                    format!("{base}/v2/share-replicas/{replica}"),
                    None,
                )
            };
            // Replica id → promotions accepted for it.
            let mut accepted: Vec<(String, usize)> = Vec::new();
            match plan {
                Plan::RacePromotes => {
                    let (a, b) = tokio::join!(
                        promote(&bases[0], &targets[0]),
                        promote(&bases[1], &targets[1])
                    );
                    for (replica, (status, body)) in targets.iter().zip([a, b]) {
                        assert!(
                            status == 202 || status == 400,
                            "promote {replica}: {status} {body}"
                        );
                        accepted.push((replica.clone(), usize::from(status == 202)));
                    }
                    assert!(
                        accepted.iter().any(|(_, n)| *n == 1),
                        "neither racing promote of share {share} was accepted"
                    );
                }
                Plan::Promote => {
                    let (status, body) = promote(&bases[i % 2], &targets[0]).await;
                    assert_eq!(status, 202, "{body}");
                    accepted.push((targets[0].clone(), 1));
                }
                Plan::DeleteReplica => {
                    let (status, body) = delete(&bases[i % 2], &targets[0]).await;
                    assert_eq!(status, 202, "{body}");
                }
                Plan::DeleteShare => {
                    let (a, b) = tokio::join!(
                        delete(&bases[0], &targets[0]),
                        delete(&bases[1], &targets[1])
                    );
                    assert_eq!((a.0, b.0), (202, 202), "{a:?} {b:?}");
                    for replica in &targets {
                        wait_for(
                            &format!("{}/v2/share-replicas/{replica}", bases[0]),
                            Duration::from_secs(60),
                            "replica deleted",
                            |s, _| s == 404,
                        )
                        .await;
                    }
                    let url = format!("{}/v2/shares/{share}", bases[(i + 1) % 2]);
                    let (status, body) =
                        api(&client, reqwest::Method::DELETE, url.clone(), None).await;
                    assert_eq!(status, 202, "{body}");
                    wait_for(&url, Duration::from_secs(60), "share deleted", |s, _| {
                        s == 404
                    })
                    .await;
                }
            }
            (share, plan, targets, accepted)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = actions.join_next().await {
        outcomes.push(done.expect("action task"));
    }

    // 4. Everything settles: no work left in the queue, no replica in a transitional state.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let unfinished = db
            .store()
            .count_unfinished_operations()
            .await
            .expect("count");
        if unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} operations still unfinished after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let replicas = list_replicas(&client, &bases[1]).await;
    eprintln!(
        "{SHARES} shares, {} replicas left, settled in {:?}",
        replicas.len(),
        started.elapsed()
    );
    check_replicas(&shares, &outcomes, &replicas);
    check_operations(db.store().as_ref(), &outcomes, &replicas).await;
    check_promotions_serialized(db.store().as_ref(), &outcomes, &replicas).await;

    drop(nodes);
    db.finish().await;
}

type Outcome = (String, Plan, Vec<String>, Vec<(String, usize)>);

/// Every share left has its expected replicas, all settled and `available`, exactly one
/// active, each on its own pool in the zone it was asked for.
fn check_replicas(shares: &[String], outcomes: &[Outcome], replicas: &[Value]) {
    for (share, plan, _, accepted) in outcomes {
        let mine: Vec<&Value> = replicas
            .iter()
            .filter(|r| r["share_id"] == *share)
            .collect();
        let expected = match plan {
            Plan::RacePromotes | Plan::Promote => 3,
            Plan::DeleteReplica => 2,
            Plan::DeleteShare => 0,
        };
        assert_eq!(mine.len(), expected, "share {share} ({plan:?}): {mine:#?}");
        if expected == 0 {
            continue;
        }
        for replica in &mine {
            let status = replica["status"].as_str().unwrap_or_default();
            assert!(SETTLED.contains(&status), "{replica}");
            assert_eq!(status, "available", "{replica}");
        }
        let active: Vec<&&Value> = mine
            .iter()
            .filter(|r| r["replica_state"] == "active")
            .collect();
        assert_eq!(active.len(), 1, "share {share}: {mine:#?}");
        // A promoted replica that ran last is the active one.
        if !accepted.is_empty() {
            assert!(
                accepted
                    .iter()
                    .any(|(id, n)| *n > 0 && active[0]["id"] == id.as_str()),
                "share {share}: active {} is none of the promoted {accepted:?}",
                active[0]["id"]
            );
        }
        let mut pools: Vec<&str> = mine
            .iter()
            .map(|r| r["host"].as_str().unwrap_or_default())
            .collect();
        pools.sort_unstable();
        pools.dedup();
        assert_eq!(
            pools.len(),
            mine.len(),
            "two instances of share {share} on one pool: {mine:#?}"
        );
        for replica in &mine {
            let host = replica["host"].as_str().unwrap_or_default();
            let zone = replica["availability_zone"].as_str().unwrap_or_default();
            let node = &host[..host.find('@').expect("host@backend#pool")];
            assert_eq!(format!("az{}", &node[1..]), zone, "{replica}");
        }
    }
    assert_eq!(outcomes.len(), shares.len());
}

/// Kinds of which one target gets at most one operation: a second would be work done twice.
const ONCE_PER_TARGET: [&str; 5] = [
    "schedule_share_instance",
    "create_share_instance",
    "create_share_replica",
    "delete_share_replica",
    "delete_share_instance",
];

/// Every operation is `done`, none ran without being released in between (a claim taken
/// over after a lost lease), retries were waits for the busy share lock, and no instance
/// got its scheduling, creation, deletion or a promotion twice.
async fn check_operations(store: &dyn Store, outcomes: &[Outcome], replicas: &[Value]) {
    let operations = store.list_operations(None).await.expect("operations");
    let mut per_target: std::collections::BTreeMap<(&str, &str), Vec<&shoal_store::OperationRow>> =
        Default::default();
    for op in &operations {
        assert_eq!(op.state, shoal_store::OperationState::Done, "{op:?}");
        if op.attempts > 1 {
            let error = op.last_error.as_deref().unwrap_or_default();
            assert!(
                error.starts_with("busy:"),
                "operation retried for another reason: {op:?}"
            );
        }
        per_target
            .entry((op.kind.as_str(), op.target_id.as_str()))
            .or_default()
            .push(op);
    }
    let busy = operations.iter().filter(|op| op.attempts > 1).count();
    let races = outcomes
        .iter()
        .filter(|(_, plan, _, accepted)| {
            *plan == Plan::RacePromotes && accepted.iter().all(|(_, n)| *n == 1)
        })
        .count();
    eprintln!(
        "{} operations, {busy} of them retried on a busy share lock; {races} races with both \
         promotions accepted",
        operations.len()
    );
    for ((kind, target), ops) in &per_target {
        if ONCE_PER_TARGET.contains(kind) {
            assert_eq!(
                ops.len(),
                1,
                "{kind} of {target} enqueued {} times: {ops:#?}",
                ops.len()
            );
        }
    }
    // Each surviving instance was scheduled once and created once, on the back end it is on.
    for replica in replicas {
        let id = replica["id"].as_str().expect("id");
        assert_eq!(
            per_target
                .get(&("schedule_share_instance", id))
                .map(Vec::len),
            Some(1),
            "replica {id} scheduled once"
        );
        let created: Vec<_> = ["create_share_instance", "create_share_replica"]
            .iter()
            .filter_map(|kind| per_target.get(&(*kind, id)))
            .flatten()
            .collect();
        assert_eq!(created.len(), 1, "replica {id} created once: {created:#?}");
        let host = replica["host"].as_str().expect("host");
        assert_eq!(
            created[0].host.as_deref(),
            host.split('#').next(),
            "replica {id} was created where it is placed"
        );
    }
    // Promotions: exactly the accepted ones, each once; deletions of the deleted replicas.
    for (share, plan, targets, accepted) in outcomes {
        for (replica, count) in accepted {
            let promotes = per_target
                .get(&("promote_share_replica", replica.as_str()))
                .map_or(0, Vec::len);
            assert_eq!(
                promotes, *count,
                "promotions of replica {replica} of share {share}"
            );
        }
        let deleted: &[String] = match plan {
            Plan::DeleteReplica => &targets[..1],
            Plan::DeleteShare => &targets[..],
            _ => &[],
        };
        for replica in deleted {
            assert!(
                per_target.contains_key(&("delete_share_replica", replica.as_str())),
                "deleted replica {replica} has its delete operation"
            );
        }
    }
}

/// Promotions of one share ran one after another on the back ends: the syncs the dummy
/// reports for them (one per promotion, spanning the driver call) do not overlap, and there
/// is one per accepted promotion.
async fn check_promotions_serialized(store: &dyn Store, outcomes: &[Outcome], replicas: &[Value]) {
    for (share, _, _, accepted) in outcomes {
        let mut spans = Vec::new();
        for replica in replicas.iter().filter(|r| r["share_id"] == *share) {
            let id: uuid::Uuid = replica["id"].as_str().expect("id").parse().expect("uuid");
            let history = store
                .list_replication_history(id, 100)
                .await
                .expect("history");
            spans.extend(
                history
                    .into_iter()
                    .filter(|h| h.trigger == "promote")
                    .map(|h| (h.started_at, h.finished_at, id)),
            );
        }
        let expected: usize = accepted.iter().map(|(_, n)| n).sum();
        assert_eq!(
            spans.len(),
            expected,
            "share {share}: promotions run {spans:?}"
        );
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "promotions of share {share} overlapped: {pair:?}"
            );
        }
    }
}
