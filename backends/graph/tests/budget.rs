//! The request budget: a full sync of 200 rooms whose windows fit in one page is ~200/20
//! `$batch` requests plus the token call, not 200+; an incremental sync with no changes is one
//! delta round per room, batched. Counted by the source's stats and by the simulator's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calpump_backend_common::stats::StatsSnapshot;
use calpump_simulator::Protocol;
use common::{Collector, Cred, assert_equal_to_truth, default_targets};

/// HTTP requests (not sub-requests) in a snapshot.
fn http_requests(s: &StatsSnapshot) -> u64 {
    s.operations
        .iter()
        .filter(|o| !o.operation.starts_with("batched."))
        .map(|o| o.requests)
        .sum()
}

fn op(s: &StatsSnapshot, name: &str) -> u64 {
    s.op(name).map_or(0, |o| o.requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_rooms_cost_ten_batches_per_sync() {
    let env = common::start(200, Cred::Secret).await;
    let rooms = common::rooms(200);
    let targets = default_targets(&rooms);
    let window = common::window(&env.sim);
    let mut collector = Collector::default();

    // Full sync.
    let s0 = env.source.stats();
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    let s1 = env.source.stats();
    assert_eq!(op(&s1, "token") - op(&s0, "token"), 1, "one token call");
    assert_eq!(
        op(&s1, "batch") - op(&s0, "batch"),
        10,
        "200 rooms / 20 per $batch"
    );
    assert_eq!(
        http_requests(&s1) - http_requests(&s0),
        11,
        "10 batches + 1 token call, not 200+"
    );
    assert_eq!(op(&s1, "batched.calendarView"), 200, "one page per room");
    let sim = env.sim.control().stats();
    assert_eq!(sim.operation(Protocol::Graph, "batch"), 10);
    assert_eq!(sim.operation(Protocol::Graph, "calendarView"), 200);
    assert_eq!(sim.operation(Protocol::Token, "token"), 1);

    // Incremental, nothing changed: the first starts the delta rounds, the second follows the
    // delta links; both one delta request per room in 10 batches, nothing else.
    for round in 0..2 {
        env.sim.control().reset_stats();
        let before = env.source.stats();
        assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
        let after = env.source.stats();
        assert_eq!(
            op(&after, "batch") - op(&before, "batch"),
            10,
            "round {round}"
        );
        assert_eq!(
            http_requests(&after) - http_requests(&before),
            10,
            "round {round}: no token call, nothing else"
        );
        assert_eq!(
            op(&after, "batched.calendarView.delta") - op(&before, "batched.calendarView.delta"),
            200
        );
        assert_eq!(
            op(&after, "batched.event") - op(&before, "batched.event"),
            0,
            "nothing to complete"
        );
        let sim = env.sim.control().stats();
        assert_eq!(
            sim.operation(Protocol::Graph, "calendarView.delta"),
            200,
            "round {round}"
        );
        assert_eq!(
            sim.operation(Protocol::Graph, "calendarView"),
            0,
            "round {round}: no full read"
        );
        assert_eq!(sim.total, 210, "round {round}: {:?}", sim.by_operation);
    }
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_carries_at_most_four_requests_per_mailbox() {
    use calpump_graph::client::{GraphClient, SubRequest};
    let env = common::start(2, Cred::Secret).await;
    let request = |mailbox: &str| SubRequest {
        op: "calendar",
        mailbox: Some(mailbox.to_string()),
        url: GraphClient::relative(&["users", mailbox, "calendar"], &[("$select", "id,name")]),
        page: false,
        what: format!("calendar of {mailbox}"),
    };
    let (a, b) = ("room-1.01@contoso.com", "room-1.02@contoso.com");
    let mut requests: Vec<SubRequest> = (0..9).map(|_| request(a)).collect();
    requests.extend((0..3).map(|_| request(b)));
    let before = env.source.stats();
    let results = env.source.client().batch(&requests).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let after = env.source.stats();
    assert_eq!(
        op(&after, "batch") - op(&before, "batch"),
        3,
        "9 requests for one mailbox need 3 batches (4 + 4 + 1); the other mailbox's 3 ride along"
    );
    assert_eq!(op(&after, "batched.calendar"), 12);
    env.sim.shutdown().await;
}
