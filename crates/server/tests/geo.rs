//! End-to-end tests of the geo commands against the real binary: exact reply bytes (as
//! redis-server 7.0.15 sends them, RESP2 and RESP3), Redis's error lines, NX/XX/CH, the STORE
//! forms, key positions, and search results checked against a brute-force scan.

mod common;

use common::{bulk, dirty, err, int, ok, q, strings, Server};
use redis::{Connection, Value};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Adds Palermo and Catania to `Sicily`, the classic example.
fn sicily(c: &mut Connection) {
    let add = [
        "GEOADD",
        "Sicily",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ];
    assert_eq!(int(c, &add), 2);
}

/// The position GEOPOS reports for a member, as numbers.
fn pos(c: &mut Connection, key: &str, member: &str) -> Option<(f64, f64)> {
    match q(c, &["GEOPOS", key, member]) {
        Ok(Value::Array(items)) => match &items[0] {
            Value::Array(xy) => {
                let num = |v: &Value| match v {
                    Value::BulkString(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
                    other => panic!("coordinate {other:?}"),
                };
                Some((num(&xy[0]), num(&xy[1])))
            }
            Value::Nil => None,
            other => panic!("GEOPOS item {other:?}"),
        },
        other => panic!("GEOPOS {other:?}"),
    }
}

#[test]
fn geoadd_options_and_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    sicily(&mut c);
    assert_eq!(
        q(&mut c, &["TYPE", "Sicily"]),
        Ok(Value::SimpleString("zset".into()))
    );
    // Same positions: nothing added or changed, even with CH.
    let again = [
        "GEOADD",
        "Sicily",
        "CH",
        "13.361389",
        "38.115556",
        "Palermo",
    ];
    assert_eq!(int(&mut c, &again), 0);
    // XX moves existing members only; CH counts the move.
    let xx = [
        "GEOADD", "Sicily", "XX", "CH", "15", "37", "Catania", "1", "1", "New",
    ];
    assert_eq!(int(&mut c, &xx), 1);
    assert_eq!(pos(&mut c, "Sicily", "New"), None);
    // NX adds new members only.
    let nx = [
        "GEOADD", "Sicily", "NX", "13", "38", "Palermo", "16", "38", "Other",
    ];
    assert_eq!(int(&mut c, &nx), 1);
    let (lon, _) = pos(&mut c, "Sicily", "Palermo").unwrap();
    assert!((lon - 13.361389).abs() < 1e-5);
    // XX on a missing key creates nothing.
    assert_eq!(int(&mut c, &["GEOADD", "nokey", "XX", "1", "1", "a"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "nokey"]), 0);

    assert_eq!(
        err(&mut c, &["GEOADD", "k", "200", "100", "m"]),
        "ERR invalid longitude,latitude pair 200.000000,100.000000"
    );
    assert_eq!(
        err(&mut c, &["GEOADD", "k", "0", "-85.05112879", "m"]),
        "ERR invalid longitude,latitude pair 0.000000,-85.051129"
    );
    assert_eq!(
        err(&mut c, &["GEOADD", "k", "abc", "100", "m"]),
        "ERR value is not a valid float"
    );
    for args in [
        &["GEOADD", "k", "1", "2", "3", "m"][..],
        &["GEOADD", "k", "NX", "XX", "1", "2", "m"],
        &["GEOADD", "k", "CH", "CH", "CH"],
        &["GEOADD", "k", "GT", "1", "2", "m"],
    ] {
        assert_eq!(err(&mut c, args), "ERR syntax error", "{args:?}");
    }
    assert_eq!(
        err(&mut c, &["GEOADD", "k", "1", "2"]),
        "ERR wrong number of arguments for 'geoadd' command"
    );
    // A bad position is reported before the key's type; nothing is added on any error.
    ok(&mut c, &["SET", "str", "v"]);
    assert_eq!(
        err(&mut c, &["GEOADD", "str", "200", "1", "a"]),
        "ERR invalid longitude,latitude pair 200.000000,1.000000"
    );
    assert_eq!(err(&mut c, &["GEOADD", "str", "1", "1", "a"]), WRONGTYPE);
    assert_eq!(
        err(&mut c, &["GEOADD", "k2", "1", "1", "a", "500", "1", "b"]),
        "ERR invalid longitude,latitude pair 500.000000,1.000000"
    );
    assert_eq!(int(&mut c, &["EXISTS", "k2"]), 0);
    // The extreme valid positions.
    assert_eq!(
        int(
            &mut c,
            &[
                "GEOADD",
                "k",
                "180",
                "85.05112878",
                "ne",
                "-180",
                "-85.05112878",
                "sw"
            ]
        ),
        2
    );
}

#[test]
fn geoadd_counts_changes() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let before = dirty(&mut c);
    sicily(&mut c);
    assert_eq!(dirty(&mut c), before + 2);
    int(
        &mut c,
        &["GEOADD", "Sicily", "15", "37", "Catania", "1", "1", "x"],
    );
    assert_eq!(dirty(&mut c), before + 4);
}

#[test]
fn positions_hashes_and_distances_resp2() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    sicily(&mut c);
    let mut r = srv.raw();
    r.cmd(&[b"GEOPOS", b"Sicily", b"Palermo", b"nope"]);
    r.expect("*2\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*-1\r\n");
    r.cmd(&[b"GEOPOS", b"nokey", b"a"]);
    r.expect("*1\r\n*-1\r\n");
    r.cmd(&[b"GEOHASH", b"Sicily", b"Palermo", b"Catania", b"nope"]);
    r.expect("*3\r\n$11\r\nsqc8b49rny0\r\n$11\r\nsqdtr74hyu0\r\n$-1\r\n");
    r.cmd(&[b"GEODIST", b"Sicily", b"Palermo", b"Catania"]);
    r.expect("$11\r\n166274.1516\r\n");
    r.cmd(&[b"GEODIST", b"Sicily", b"Palermo", b"Catania", b"km"]);
    r.expect("$8\r\n166.2742\r\n");
    r.cmd(&[b"GEODIST", b"Sicily", b"Palermo", b"Catania", b"MI"]);
    r.expect("$8\r\n103.3182\r\n");
    r.cmd(&[b"GEODIST", b"Sicily", b"Palermo", b"Catania", b"ft"]);
    r.expect("$11\r\n545518.8700\r\n");
    r.cmd(&[b"GEODIST", b"Sicily", b"Palermo", b"Palermo"]);
    r.expect("$6\r\n0.0000\r\n");
    r.cmd(&[b"GEODIST", b"Sicily", b"Palermo", b"nope"]);
    r.expect("$-1\r\n");
    r.cmd(&[b"GEODIST", b"nokey", b"a", b"b"]);
    r.expect("$-1\r\n");

    // The unit is checked before the key; extra arguments are a syntax error.
    assert_eq!(
        err(&mut c, &["GEODIST", "nokey", "a", "b", "yd"]),
        "ERR unsupported unit provided. please use M, KM, FT, MI"
    );
    assert_eq!(
        err(&mut c, &["GEODIST", "Sicily", "a", "b", "km", "x"]),
        "ERR syntax error"
    );
    ok(&mut c, &["SET", "str", "v"]);
    assert_eq!(err(&mut c, &["GEODIST", "str", "a", "b"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["GEOPOS", "str", "a"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["GEOHASH", "str", "a"]), WRONGTYPE);
    assert_eq!(
        strings(&mut c, &["GEOHASH", "Sicily"]),
        Vec::<String>::new()
    );
}

#[test]
fn replies_resp3() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    sicily(&mut c);
    let mut r = srv.raw();
    r.hello3();
    // Coordinates become doubles; distances stay bulk strings; missing items are nulls.
    r.cmd(&[b"GEOPOS", b"Sicily", b"Palermo", b"nope"]);
    r.expect("*2\r\n*2\r\n,13.36138933897018433\r\n,38.11555639549629859\r\n_\r\n");
    r.cmd(&[b"GEOHASH", b"Sicily", b"nope"]);
    r.expect("*1\r\n_\r\n");
    r.cmd(&[b"GEODIST", b"Sicily", b"Palermo", b"nope"]);
    r.expect("_\r\n");
    r.cmd(&[
        b"GEOSEARCH",
        b"Sicily",
        b"FROMLONLAT",
        b"15",
        b"37",
        b"BYRADIUS",
        b"100",
        b"km",
        b"WITHCOORD",
        b"WITHDIST",
    ]);
    r.expect(
        "*1\r\n*3\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n*2\r\n,15.08726745843887329\r\n,37.50266842333162032\r\n",
    );
}

#[test]
fn search_replies() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    sicily(&mut c);
    let mut r = srv.raw();
    r.cmd(&[
        b"GEORADIUS",
        b"Sicily",
        b"15",
        b"37",
        b"200",
        b"km",
        b"WITHDIST",
        b"WITHHASH",
        b"WITHCOORD",
        b"ASC",
    ]);
    r.expect(concat!(
        "*2\r\n*4\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n:3479447370796909\r\n",
        "*2\r\n$20\r\n15.08726745843887329\r\n$20\r\n37.50266842333162032\r\n",
        "*4\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n:3479099956230698\r\n",
        "*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n",
    ));
    r.cmd(&[
        b"GEOSEARCH",
        b"Sicily",
        b"FROMLONLAT",
        b"15",
        b"37",
        b"BYBOX",
        b"400",
        b"400",
        b"km",
        b"DESC",
        b"WITHDIST",
    ]);
    r.expect(
        "*2\r\n*2\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n*2\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n",
    );

    let s = |c: &mut Connection, args: &[&str]| strings(c, args);
    // Unsorted results come cell by cell; COUNT sorts nearest first unless ANY.
    assert_eq!(
        s(&mut c, &["GEORADIUS", "Sicily", "15", "37", "200", "km"]),
        ["Palermo", "Catania"]
    );
    assert_eq!(
        s(
            &mut c,
            &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1"]
        ),
        ["Catania"]
    );
    assert_eq!(
        s(
            &mut c,
            &[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "COUNT",
                "1",
                "ANY"
            ]
        ),
        ["Palermo"]
    );
    assert_eq!(
        s(
            &mut c,
            &[
                "GEORADIUSBYMEMBER",
                "Sicily",
                "Palermo",
                "200",
                "km",
                "COUNT",
                "1",
                "DESC"
            ]
        ),
        ["Catania"]
    );
    assert_eq!(
        s(
            &mut c,
            &["GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", "100", "km"]
        ),
        ["Palermo"]
    );
    assert_eq!(
        s(&mut c, &["GEORADIUS_RO", "Sicily", "15", "37", "1", "km"]),
        Vec::<String>::new()
    );
    assert_eq!(
        s(
            &mut c,
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMMEMBER",
                "Catania",
                "BYBOX",
                "100",
                "400",
                "km"
            ]
        ),
        ["Catania"]
    );
    assert_eq!(
        s(
            &mut c,
            &[
                "GEOSEARCH",
                "nokey",
                "FROMMEMBER",
                "x",
                "BYRADIUS",
                "1",
                "km"
            ]
        ),
        Vec::<String>::new()
    );
}

#[test]
fn search_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    sicily(&mut c);
    let cases: &[(&[&str], &str)] = &[
        (
            &["GEORADIUS", "Sicily", "15", "37", "200", "yd"],
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ),
        (
            &["GEORADIUS", "Sicily", "15", "37", "-1", "km"],
            "ERR radius cannot be negative",
        ),
        (
            &["GEORADIUS", "Sicily", "15", "37", "abc", "km"],
            "ERR need numeric radius",
        ),
        (
            &["GEORADIUS", "Sicily", "200", "37", "1", "km"],
            "ERR invalid longitude,latitude pair 200.000000,37.000000",
        ),
        (
            &["GEORADIUS", "Sicily", "15", "37", "1", "km", "COUNT", "0"],
            "ERR COUNT must be > 0",
        ),
        (
            &["GEORADIUS", "Sicily", "15", "37", "1", "km", "COUNT", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["GEORADIUS", "Sicily", "15", "37", "1", "km", "COUNT"],
            "ERR syntax error",
        ),
        (
            &["GEORADIUS", "Sicily", "15", "37", "1", "km", "ANY"],
            "ERR the ANY argument requires COUNT argument",
        ),
        (
            &["GEORADIUS", "Sicily", "15", "37", "1", "km", "STORE", "d", "WITHDIST"],
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ),
        (
            &["GEORADIUS_RO", "Sicily", "15", "37", "1", "km", "STORE", "d"],
            "ERR syntax error",
        ),
        (
            &["GEORADIUSBYMEMBER", "Sicily", "nope", "1", "km"],
            "ERR could not decode requested zset member",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"],
            "ERR could not decode requested zset member",
        ),
        (
            &["geoSearch", "Sicily", "BYRADIUS", "1", "km", "ASC", "WITHDIST"],
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for geoSearch",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "WITHDIST", "ASC"],
            "ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH",
        ),
        (
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "FROMMEMBER",
                "Palermo",
                "BYRADIUS",
                "1",
                "km",
            ],
            "ERR syntax error",
        ),
        (
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "1",
                "km",
                "BYBOX",
                "1",
                "1",
                "km",
            ],
            "ERR syntax error",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "-1", "1", "km"],
            "ERR height or width cannot be negative",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "a", "1", "km"],
            "ERR need numeric width",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "a", "km"],
            "ERR need numeric height",
        ),
        (
            &[
                "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "STORE",
                "x",
            ],
            "ERR syntax error",
        ),
        (
            &[
                "GEOSEARCHSTORE",
                "d",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "1",
                "km",
                "WITHDIST",
            ],
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ),
        // A missing source still has its options checked (but no member to look up).
        (
            &["GEOSEARCH", "nokey", "FROMMEMBER", "nope", "ASC", "ANY", "WITHDIST"],
            "ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH",
        ),
        (
            &["GEORADIUSBYMEMBER", "nokey", "nope", "1", "km", "bogus"],
            "ERR syntax error",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(&err(&mut c, args), want, "{args:?}");
    }
    ok(&mut c, &["SET", "str", "v"]);
    // The source's type is checked first.
    assert_eq!(
        err(&mut c, &["GEORADIUS", "str", "abc", "37", "1", "km"]),
        WRONGTYPE
    );
    assert_eq!(
        err(
            &mut c,
            &[
                "GEOSEARCHSTORE",
                "d",
                "str",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
                "km"
            ]
        ),
        WRONGTYPE
    );
    // Without a source, BYMEMBER does not look at its radius or unit.
    assert_eq!(
        strings(&mut c, &["GEORADIUSBYMEMBER", "nokey", "nope", "-1", "yd"]),
        Vec::<String>::new()
    );
}

#[test]
fn store_forms() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    sicily(&mut c);
    let radius = ["GEORADIUS", "Sicily", "15", "37", "200", "km"];
    let with = |extra: &[&str]| -> Vec<String> {
        radius.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    assert_eq!(int(&mut c, &with(&["STORE", "dst"])), 2);
    assert_eq!(
        q(&mut c, &["TYPE", "dst"]),
        Ok(Value::SimpleString("zset".into()))
    );
    // STORE keeps the geohash scores: the positions survive.
    assert_eq!(
        pos(&mut c, "dst", "Palermo"),
        pos(&mut c, "Sicily", "Palermo")
    );
    assert_eq!(int(&mut c, &with(&["COUNT", "1", "STORE", "one"])), 1);
    assert_eq!(pos(&mut c, "one", "Palermo"), None);
    assert!(pos(&mut c, "one", "Catania").is_some());

    // STOREDIST stores distances in the query's unit: 166.2742 km decodes near -180,-85.
    let store = [
        "GEOSEARCHSTORE",
        "dd",
        "Sicily",
        "FROMMEMBER",
        "Palermo",
        "BYRADIUS",
        "200",
        "km",
        "STOREDIST",
    ];
    assert_eq!(int(&mut c, &store), 2);
    let mut r = srv.raw();
    r.cmd(&[b"GEOPOS", b"dd", b"Catania"]);
    r.expect("*1\r\n*2\r\n$21\r\n-179.9999275803565979\r\n$21\r\n-85.05112244319710157\r\n");

    // A TTL on the destination goes with the overwrite.
    int(&mut c, &["EXPIRE", "dst", "100"]);
    assert_eq!(int(&mut c, &with(&["STOREDIST", "dst"])), 2);
    assert_eq!(int(&mut c, &["TTL", "dst"]), -1);

    // No match, or no source: the destination is deleted and one change counted.
    let before = dirty(&mut c);
    let none = ["GEORADIUS", "Sicily", "0", "0", "1", "km", "STORE", "dst"];
    assert_eq!(int(&mut c, &none), 0);
    assert_eq!(int(&mut c, &["EXISTS", "dst"]), 0);
    assert_eq!(dirty(&mut c), before + 1);
    let missing = [
        "GEOSEARCHSTORE",
        "one",
        "nokey",
        "FROMMEMBER",
        "x",
        "BYRADIUS",
        "1",
        "km",
    ];
    assert_eq!(int(&mut c, &missing), 0);
    assert_eq!(int(&mut c, &["EXISTS", "one"]), 0);
    let bymember = ["GEORADIUSBYMEMBER", "nokey", "x", "1", "km", "STORE", "dd"];
    assert_eq!(int(&mut c, &bymember), 0);
    assert_eq!(int(&mut c, &["EXISTS", "dd"]), 0);
    assert_eq!(dirty(&mut c), before + 3);

    // Source and destination may be the same key.
    let same = [
        "GEOSEARCHSTORE",
        "Sicily",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "100",
        "km",
    ];
    assert_eq!(int(&mut c, &same), 1);
    assert_eq!(pos(&mut c, "Sicily", "Palermo"), None);

    // The destination must be a key of the command (cluster routing, locking).
    assert_eq!(
        strings(
            &mut c,
            &[
                "COMMAND",
                "GETKEYS",
                "GEORADIUS",
                "k",
                "1",
                "2",
                "3",
                "km",
                "STORE",
                "a"
            ]
        ),
        ["k", "a"]
    );
    assert_eq!(
        strings(
            &mut c,
            &[
                "COMMAND",
                "GETKEYS",
                "GEORADIUSBYMEMBER",
                "k",
                "m",
                "3",
                "km",
                "STOREDIST",
                "b"
            ]
        ),
        ["k", "b"]
    );
    assert_eq!(
        strings(
            &mut c,
            &[
                "COMMAND",
                "GETKEYS",
                "GEOSEARCHSTORE",
                "d",
                "s",
                "FROMMEMBER",
                "m",
                "BYRADIUS",
                "1",
                "km"
            ]
        ),
        ["d", "s"]
    );
    // Two destinations: the last one is written (and both are keys of the command).
    let twice = with(&["STORE", "a{t}", "STORE", "b{t}"]);
    assert_eq!(int(&mut c, &twice), 1);
    assert_eq!(int(&mut c, &["EXISTS", "a{t}", "b{t}"]), 1);
    assert!(pos(&mut c, "b{t}", "Catania").is_some());
}

/// A small deterministic generator (no rand dependency in tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.next() * (hi - lo)
    }
}

/// Haversine distance in metres with Redis's earth radius.
fn haversine(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let r = 6372797.560856;
    let (la1, la2) = (lat1.to_radians(), lat2.to_radians());
    let u = ((la2 - la1) / 2.0).sin();
    let v = ((lon2 - lon1).to_radians() / 2.0).sin();
    2.0 * r * (u * u + la1.cos() * la2.cos() * v * v).sqrt().asin()
}

#[test]
fn radius_search_finds_exactly_the_points_inside() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let mut rng = Lcg(42);
    let mut points = Vec::new();
    let mut add = vec!["GEOADD".to_string(), "pts".to_string()];
    for i in 0..400 {
        let (lon, lat) = (rng.range(5.0, 25.0), rng.range(30.0, 50.0));
        add.extend([format!("{lon}"), format!("{lat}"), format!("p{i}")]);
        points.push(format!("p{i}"));
    }
    assert_eq!(int(&mut c, &add), 400);
    // Decoded positions, as the server sees them.
    let stored: Vec<(String, (f64, f64))> = points
        .iter()
        .map(|p| (p.clone(), pos(&mut c, "pts", p).unwrap()))
        .collect();
    for _ in 0..40 {
        let (lon, lat) = (rng.range(5.0, 25.0), rng.range(30.0, 50.0));
        let radius_km = rng.range(10.0, 800.0);
        let args = [
            "GEOSEARCH".to_string(),
            "pts".into(),
            "FROMLONLAT".into(),
            lon.to_string(),
            lat.to_string(),
            "BYRADIUS".into(),
            radius_km.to_string(),
            "km".into(),
            "ASC".into(),
        ];
        let found = match q(&mut c, &args) {
            Ok(Value::Array(v)) => v
                .into_iter()
                .map(|m| match m {
                    Value::BulkString(b) => String::from_utf8(b).unwrap(),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let dist = |name: &str| {
            let (_, (plon, plat)) = stored.iter().find(|(n, _)| n == name).unwrap();
            haversine(lon, lat, *plon, *plat)
        };
        let limit = radius_km * 1000.0;
        for w in found.windows(2) {
            assert!(dist(&w[0]) <= dist(&w[1]) + 1e-6, "ASC order");
        }
        for (name, _) in &stored {
            let d = dist(name);
            if (d - limit).abs() < 1.0 {
                continue; // On the edge: rounding may go either way.
            }
            assert_eq!(
                found.contains(name),
                d < limit,
                "{name} at {d} m, radius {limit} m"
            );
        }
    }
    // COUNT returns the nearest ones.
    let nearest = strings(
        &mut c,
        &[
            "GEOSEARCH",
            "pts",
            "FROMLONLAT",
            "15",
            "40",
            "BYRADIUS",
            "500",
            "km",
            "COUNT",
            "3",
        ],
    );
    let all = strings(
        &mut c,
        &[
            "GEOSEARCH",
            "pts",
            "FROMLONLAT",
            "15",
            "40",
            "BYRADIUS",
            "500",
            "km",
            "ASC",
        ],
    );
    assert_eq!(nearest, all[..3]);
    assert_eq!(
        bulk(&mut c, &["GEODIST", "pts", &all[0], &all[0]]).as_deref(),
        Some("0.0000")
    );
}
