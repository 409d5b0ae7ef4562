//! One request, phase by phase, in the order the contract fixes:
//!
//! 1. routing: longest whole-segment prefix, looked up first so that every
//!    refusal carries the route's CORS headers
//! 2. hygiene: paths an upstream could read otherwise, ambiguous framing,
//!    a missing or repeated `Host` (400); then no route (404)
//! 3. method: the route's `methods`; for a preflight, the requested one (405)
//! 4. preflight: answered here, before auth, so it is never a 401 (200/400);
//!    then the rate limits keyed by IP or route, before auth so that floods
//!    of bad tokens are limited too (429), and never for a preflight
//! 5. identity: repeated `Authorization` refused (400), every injected
//!    header name stripped from the client's request, then the token
//!    verified and claims injected (401/403); then the claim-keyed rate
//!    limits, so a caller only spends its own company's budget (429)
//! 6. upstream: the request rewritten and streamed (501/502/503/504/413;
//!    400 for a malformed request body, 499 logged for a client gone
//!    mid-upload); `Upgrade` only for `websocket` and the route's `upgrades`
//! 7. response: hop-by-hop headers dropped (and `Content-Length` beside
//!    `Transfer-Encoding`), request id, process time, CORS
//! 8. logging: one line per request, metrics
//!
//! Errors in any phase become a response in one place (`error::GatewayError`)
//! and still get phase 7 and 8, so a page can read a 401's detail.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use crate::auth;
use crate::cors::{self, Verdict};
use crate::error::{GatewayError, UpstreamError, json_response};
use crate::framing::Framing;
use crate::proxy::body::{ClientFaultRecord, RequestBody, ResponseBody, UpstreamBody, full};
use crate::proxy::client::Sent;
use crate::proxy::{forward, headers, tunnel, upstream};
use crate::runtime::{CompiledRoute, Runtime};
use crate::timer::ConnTimer;

/// What the connection knows about the client.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    /// The peer's address.
    pub(crate) peer: SocketAddr,
    /// Whether the listener speaks TLS.
    pub(crate) tls: bool,
    /// The peer's IP as `X-Forwarded-For` writes it, made once per
    /// connection rather than once per request.
    pub(crate) forwarded_for: HeaderValue,
    /// The framing watch on this connection's socket.
    pub(crate) framing: Arc<Framing>,
    /// The timer an HTTP/1 request waits for its upstream's answer on.
    pub(crate) timer: ConnTimer,
}

impl ConnInfo {
    /// What a connection from `peer` knows.
    pub(crate) fn new(
        peer: SocketAddr,
        tls: bool,
        framing: Arc<Framing>,
        timer: ConnTimer,
    ) -> Self {
        ConnInfo {
            peer,
            tls,
            forwarded_for: headers::forwarded_for(peer.ip()),
            framing,
            timer,
        }
    }
}

/// What the phases learn, for the response filter and the log line.
struct Ctx<'a> {
    rt: &'a crate::state::LocalRuntime,
    route: Option<&'a CompiledRoute>,
    /// What the response step does for CORS: decided by routing (the
    /// origin's verdict), turned into `Preflight` only when the preflight
    /// is answered.
    cors: cors::Outcome,
    /// The verified token's identity (user and company id for the log
    /// line; which HMAC secret verified it, by position, when several are
    /// configured: README "Rotating the HMAC secret").
    identity: Option<Arc<auth::Identity>>,
    /// The client's address as decided by `headers::client_ip` from the
    /// peer, `X-Forwarded-For` and `[server] trusted_proxies`: the one
    /// address logs, metrics and per-IP rules use.
    client_ip: IpAddr,
    /// The `RateLimit` header for an allowed response of a limited route.
    rate_limit: Option<crate::ratelimit::Status>,

    /// The request's place in its trace (W3C Trace Context): continued or
    /// started on arrival, sent upstream in phase 6, logged in phase 8.
    trace: crate::trace::TraceContext,
    /// Set until the request is answered: when the connection drops the
    /// request first (an HTTP/2 client resets its stream, an HTTP/1.1 one
    /// closes the socket), hyper drops it mid-phase and `Drop` writes its
    /// log line, as nginx logs 499.
    unanswered: Option<Unanswered<'a>>,
}

/// What the log line of a request the client abandoned needs.
struct Unanswered<'a> {
    request_id: &'a HeaderValue,
    method: &'a Method,
    path: &'a str,
    start: Instant,
}

impl Ctx<'_> {
    fn user_id(&self) -> Option<&str> {
        self.identity.as_deref().and_then(|i| i.user_id.as_deref())
    }

    fn company_id(&self) -> Option<&str> {
        self.identity
            .as_deref()
            .and_then(|i| i.company_id.as_deref())
    }
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        let Some(u) = self.unanswered.take() else {
            return;
        };
        let elapsed = u.start.elapsed();
        let status = crate::error::CLIENT_CLOSED_REQUEST.as_u16();
        self.route
            .map_or(&self.rt.no_route, |r| &r.stats)
            .record(u.method, status, elapsed);
        tracing::info!(
            request_id = u.request_id.to_str().unwrap_or("-"),
            trace_id = %self.trace.trace_id(),
            method = %u.method,
            path = u.path,
            route = self.route.map_or("", |r| &*r.name),
            status,
            duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1000.0,
            user_id = self.user_id().unwrap_or(""),
            company_id = self.company_id().unwrap_or(""),
            blame = "client",
            error = "the client closed the request before the answer",
            "request refused"
        );
    }
}

/// Serves one request on the public listener.
///
/// An `async` block rather than an `async fn` (here and in `process`): an
/// `async fn` keeps its arguments beside the locals it moves them to, and
/// this future is the size of every connection's in-flight request slot
/// in hyper (see `forward::send`).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold its arguments twice (see above)"
)]
pub(crate) fn handle(
    req: Request<Incoming>,
    conn: Arc<ConnInfo>,
    rt: Arc<crate::state::LocalRuntime>,
) -> impl Future<Output = Response<ResponseBody>> {
    async move {
        let start = Instant::now();
        let request_id = headers::request_id(req.headers());
        let method = req.method().clone();
        // For the log line, copied: hyper's request head shares the
        // connection's 8 KiB read buffer, which a reference held until the
        // answer would keep beside the one hyper reads the next request
        // into (README "Performance", memory under 1,000 connections).
        let path: Box<str> = req.uri().path().into();
        let path = &*path;
        // Consulted for every request, in order, so the count stays in step.
        let ambiguous = conn.framing.next_request();

        if !ambiguous && let Some(resp) = builtin_endpoint(&req, &rt) {
            return finish_plain(resp, &request_id, start);
        }

        let _in_flight = crate::metrics::InFlight::enter();
        let trace = crate::trace::TraceContext::from_request(
            req.headers(),
            rt.config.telemetry.sample_ratio,
        );
        let client_ip = headers::client_ip(
            conn.peer.ip(),
            req.headers(),
            &rt.config.server.trusted_proxies,
        );
        let mut ctx = Ctx {
            rt: &rt,
            route: None,
            cors: cors::Outcome::Apply(Verdict::NotAllowed),
            identity: None,
            client_ip,
            rate_limit: None,

            trace,
            unanswered: Some(Unanswered {
                request_id: &request_id,
                method: &method,
                path,
                start,
            }),
        };
        let result = process(req, conn, ambiguous, &request_id, &mut ctx).await;
        ctx.unanswered = None;
        let (mut resp, error) = match result {
            Ok(resp) => (resp, None),
            Err(e) => {
                crate::metrics::record_error(&e);
                let status = e.status();
                let blame = e.blame();
                let cause = forward::cause_chain(&e);
                (e.into_response().map(full), Some((status, blame, cause)))
            }
        };

        // 7. response filter
        let elapsed = start.elapsed();
        let policy = ctx.route.map_or(&rt.default_cors, |r| &r.cors);
        if let cors::Outcome::Apply(verdict) = &ctx.cors {
            policy.apply(verdict, resp.headers_mut());
        }
        let h = resp.headers_mut();
        h.insert(&headers::X_REQUEST_ID, request_id.clone());
        h.insert(&headers::X_PROCESS_TIME, headers::process_time(elapsed));
        // An allowed request's `RateLimit` (a 429 of ours carries its own);
        // beside the upstream's own, if it sends one (one list, RFC 8941).
        if let Some(rl) = &ctx.rate_limit
            && !matches!(&error, Some((st, ..)) if *st == StatusCode::TOO_MANY_REQUESTS)
        {
            h.append(&crate::error::RATELIMIT, rl.header().clone());
        }

        // 8. logging
        let status = resp.status().as_u16();
        let route_name = ctx.route.map_or("", |r| &r.name);
        ctx.route
            .map_or(&rt.no_route, |r| &r.stats)
            .record(&method, status, elapsed);
        let rid = request_id.to_str().unwrap_or("-");
        let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1000.0;
        let user_id = ctx.user_id().unwrap_or("");
        let company_id = ctx.company_id().unwrap_or("");
        let secret_position = ctx.identity.as_ref().and_then(|i| i.secret_position);
        let client_ip = ctx.client_ip;
        let trace_id = ctx.trace.trace_id();
        crate::trace::finish(
            &ctx.trace,
            &crate::trace::Finished {
                method: &method,
                path,
                route: route_name,
                status,
                user_id: ctx.user_id(),
                company_id: ctx.company_id(),
                elapsed,
            },
        );
        match error {
            Some((st, blame, cause)) if st.is_server_error() => tracing::warn!(
                request_id = rid, trace_id = %trace_id, method = %method, path = %path, route = route_name, status, duration_ms,
                user_id, company_id, secret_position, client_ip = %client_ip, blame = blame.as_str(), error = %cause, "request failed"
            ),
            Some((_, blame, cause)) => tracing::info!(
                request_id = rid, trace_id = %trace_id, method = %method, path = %path, route = route_name, status, duration_ms,
                user_id, company_id, secret_position, client_ip = %client_ip, blame = blame.as_str(), error = %cause, "request refused"
            ),
            None => tracing::info!(
                request_id = rid, trace_id = %trace_id, method = %method, path = %path, route = route_name, status, duration_ms,
                user_id, company_id, secret_position, client_ip = %client_ip, "request"
            ),
        }
        resp
    }
}

/// `GET /health` (liveness) and `GET /ready` (readiness), answered before
/// routing so that no route can shadow them.
fn builtin_endpoint(req: &Request<Incoming>, rt: &Runtime) -> Option<Response<Full<Bytes>>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    match req.uri().path() {
        "/health" => Some(json_body(StatusCode::OK, crate::state::HEALTHY)),
        "/ready" => Some(if rt.is_ready() {
            json_body(StatusCode::OK, r#"{"status":"ready"}"#)
        } else {
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not ready: signing keys have not been fetched yet.",
            )
        }),
        _ => None,
    }
}

fn json_body(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn finish_plain(
    resp: Response<Full<Bytes>>,
    request_id: &HeaderValue,
    start: Instant,
) -> Response<ResponseBody> {
    let mut resp = resp.map(full);
    resp.headers_mut()
        .insert(&headers::X_REQUEST_ID, request_id.clone());
    resp.headers_mut().insert(
        &headers::X_PROCESS_TIME,
        headers::process_time(start.elapsed()),
    );
    resp
}

#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold its arguments twice (see `handle`)"
)]
fn process<'a>(
    mut req: Request<Incoming>,
    conn: Arc<ConnInfo>,
    ambiguous_framing: bool,
    request_id: &'a HeaderValue,
    ctx: &'a mut Ctx<'_>,
) -> impl Future<Output = Result<Response<ResponseBody>, GatewayError>> + 'a {
    async move {
        let rt = ctx.rt;

        // 1. routing, first so that every refusal below carries the CORS
        // headers of the route the path names (or the defaults)
        let idx = rt.router.find(req.uri().path());
        ctx.cors = cors::Outcome::Apply(match idx {
            Some(i) => rt.routes[i].cors.check(req.headers()),
            None => rt.default_cors.check(req.headers()),
        });

        // 2. hygiene
        hygiene(&req, ambiguous_framing)?;
        let route_index = idx.ok_or(GatewayError::NotFound)?;
        let route = &rt.routes[route_index];
        ctx.route = Some(route);

        // 3. method (a preflight asks about the method it names); an error,
        // not a preflight answer, so it gets the usual CORS headers
        let preflight = cors::is_preflight(req.method(), req.headers());
        let method = if preflight {
            cors::requested_method(req.headers())
        } else {
            Some(req.method().clone())
        };
        if !method.is_some_and(|m| route.allows(&m)) {
            return Err(GatewayError::MethodNotAllowed(route.allow.clone()));
        }

        // 4. preflight
        if preflight {
            return answer_preflight(route, req.headers(), &mut ctx.cors);
        }

        // 4b. rate limits known before auth (ip, route)
        if !route.limits.before.is_empty() {
            let limiter = &rt.limiter;
            let (limits, ip) = (&route.limits.before, ctx.client_ip);
            // Boxed, like the check after auth: only limited routes pay for
            // the (Redis) state in their request's future.
            Box::pin(crate::ratelimit::check(
                limiter,
                limits,
                ip,
                None,
                &mut ctx.rate_limit,
            ))
            .await?;
        }

        // 5. identity: strip what a client could forge, then verify
        if req.headers().get_all(AUTHORIZATION).iter().nth(1).is_some() {
            return Err(auth::BearerError::Repeated.into());
        }
        headers::strip_forgeable(req.headers_mut(), &rt.strip_headers);
        let injected = authenticate(route, &req, ctx).await?;

        // 6. upstream
        let target = route
            .upstream
            .as_ref()
            .ok_or(GatewayError::NotImplemented)?;
        if let (Some(limit), Some(len)) = (rt.max_body, content_length(&req))
            && len > limit
        {
            return Err(GatewayError::PayloadTooLarge);
        }
        // Only `websocket` and the route's `upgrades` are tunnelled, never
        // `h2c`: a tunnel carries requests the gateway never sees, so its
        // identity checks would end at the first one. Any other `Upgrade` is
        // dropped below with the hop-by-hop headers and the request forwarded
        // as a plain one.
        let upgrade_offer = (req.version() == Version::HTTP_11
            && headers::is_upgrade_request(req.headers()))
        .then(|| headers::allowed_upgrade(req.headers(), &route.upgrades))
        .flatten();
        let upgrade = upgrade_offer.is_some();
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

        // Only an HTTP/1.1 chunked or an HTTP/2 body can end in trailers.
        let trailers_possible = !matches!(
            req.version(),
            Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
        ) || req.headers().contains_key(http::header::TRANSFER_ENCODING);
        // An HTTP/1 request waits on its connection's timer; an HTTP/2
        // stream, a task of its own, on a timer of its own.
        let timer = (req.version() < Version::HTTP_2).then_some(&conn.timer);
        let (mut parts, body) = req.into_parts();
        upstream::rewrite(
            &mut parts,
            upstream::Forward {
                strip_prefix: route.strip_prefix.then_some(route.prefix.as_str()),
                base_path: &target.base_path,
                forwarded_for: &conn.forwarded_for,
                tls: conn.tls,
                request_id,
                upgrade: upgrade_offer.as_ref(),
                injected,
            },
        )?;
        ctx.trace.apply(&mut parts.headers);
        // A body the client breaks is recorded here, so that the failure is
        // put on the client whichever side hyper reports it on.
        let route_name = rt.route_name(route_index).unwrap_or(&route.name);
        let client_fault = ClientFaultRecord::new(request_id.clone(), route_name.clone());
        let mut body = RequestBody::new(body, rt.max_body, client_fault.clone());
        if trailers_possible {
            body = body.strip_trailers(rt.strip_headers.clone());
        }
        let upstream_req = Request::from_parts(parts, body);

        let sent = forward::send(
            target.clients.get(),
            (&target.scheme, &target.authority),
            upstream_req,
            (route.timeout, timer),
            &client_fault,
        )
        .await?;

        // 7a. upstream response headers
        upstream_response(
            sent,
            client_upgrade.zip(upgrade_offer),
            request_id,
            route,
            rt.config.server.tunnel_idle_timeout,
            client_fault,
        )
    }
}

/// Phase 7a: the upstream's response head. A 101 is passed on only for
/// the upgrade the client offered (then the tunnel starts); hop-by-hop
/// headers are dropped, and `Content-Length` beside `Transfer-Encoding`.
fn upstream_response(
    sent: Sent,
    upgrade: Option<(hyper::upgrade::OnUpgrade, HeaderValue)>,
    request_id: &HeaderValue,
    route: &CompiledRoute,
    tunnel_idle_timeout: std::time::Duration,
    client_fault: ClientFaultRecord,
) -> Result<Response<ResponseBody>, GatewayError> {
    let Sent {
        response: mut resp,
        lease,
    } = sent;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some((client_upgrade, offer)) = upgrade {
            if !headers::upgrade_was_offered(&offer, resp.headers()) {
                return Err(UpstreamError::misbehaved(
                    "upstream switched to a protocol that was not offered",
                )
                .into());
            }
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            spawn_tunnel(
                client_upgrade,
                upstream_upgrade,
                request_id.clone(),
                route.name.clone(),
                tunnel_idle_timeout,
            );
            headers::strip_hop_by_hop(resp.headers_mut(), true);
            return Ok(resp.map(|_| full(Full::new(Bytes::new()))));
        }
        return Err(
            UpstreamError::misbehaved("upstream switched protocols without being asked").into(),
        );
    }
    if headers::drop_length_beside_transfer_encoding(resp.headers_mut()) {
        tracing::warn!(
            request_id = request_id.to_str().unwrap_or("-"),
            route = &*route.name,
            blame = "upstream",
            "upstream response had both Content-Length and Transfer-Encoding; \
             framed by Transfer-Encoding and Content-Length dropped (RFC 9112 §6.3)"
        );
    }
    headers::strip_hop_by_hop(resp.headers_mut(), false);
    Ok(resp.map(|b| Either::Left(UpstreamBody::new(b, client_fault).lease(lease))))
}

/// Phase 2: what the gateway refuses to forward whatever the route (400):
/// paths an upstream could read otherwise, ambiguous framing, a missing or
/// repeated `Host`.
fn hygiene(req: &Request<Incoming>, ambiguous_framing: bool) -> Result<(), GatewayError> {
    if let Some(why) = crate::routing::path_problem(req.uri().path()) {
        return Err(GatewayError::BadRequest(why));
    }
    // hyper drops the Content-Length of such a request, so only the
    // socket's framing watch saw both (see `framing`); HTTP/2 forbids
    // Transfer-Encoding outright (the h2 layer refuses it).
    if ambiguous_framing {
        return Err(GatewayError::AmbiguousFraming);
    }
    if let Some(why) = host_problem(req.version(), req.headers()) {
        return Err(GatewayError::BadRequest(why));
    }
    Ok(())
}

/// Phase 4: answers a preflight for an allowed origin (200, its own CORS
/// headers, so `cors` becomes `Preflight`), or refuses it (400, answered
/// without CORS headers: the browser blocks it).
fn answer_preflight(
    route: &CompiledRoute,
    request: &http::HeaderMap,
    cors: &mut cors::Outcome,
) -> Result<Response<ResponseBody>, GatewayError> {
    let cors::Outcome::Apply(Verdict::Allowed(origin)) = &*cors else {
        return Err(GatewayError::CorsDisallowed(
            crate::error::RefusedOrigin::of(request.get(http::header::ORIGIN)),
        ));
    };
    // JSON like every answer of the gateway's own (the Python gateway's
    // CORS middleware answered "OK").
    let mut resp = json_response(StatusCode::OK, "OK").map(full);
    resp.headers_mut()
        .extend(route.cors.preflight_headers(origin, request));
    *cors = cors::Outcome::Preflight;
    Ok(resp)
}

/// Phase 5: verifies the token as the route's `auth` mode says
/// ([`auth::decide`]) and returns the headers to inject.
async fn authenticate(
    route: &CompiledRoute,
    req: &Request<Incoming>,
    ctx: &mut Ctx<'_>,
) -> Result<Vec<(http::HeaderName, HeaderValue)>, GatewayError> {
    let decision = auth::decide(
        &ctx.rt.auth,
        route.auth,
        &route.inject,
        auth::bearer_token(req.headers()),
    )
    .await;
    ctx.identity = decision.identity;
    let injected = decision.outcome?;
    // Claim-keyed rate limits: the caller's verified claims, else its IP.
    if !route.limits.after.is_empty() {
        let (limits, identity) = (&route.limits.after, ctx.identity.as_deref());
        Box::pin(crate::ratelimit::check(
            &ctx.rt.limiter,
            limits,
            ctx.client_ip,
            identity,
            &mut ctx.rate_limit,
        ))
        .await?;
    }
    Ok(injected)
}

/// Why the request's `Host` is refused, if it is (RFC 9112 §3.2: a server
/// MUST answer 400 to an HTTP/1.1 request with no `Host` or more than one).
/// HTTP/1.0 may lack it; HTTP/2 carries `:authority` instead, and a
/// repeated `Host` is refused on every version.
fn host_problem(version: Version, headers: &http::HeaderMap) -> Option<&'static str> {
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Some("Repeated Host header."),
        (None, _) if version == Version::HTTP_11 => Some("Missing Host header."),
        _ => None,
    }
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Copies bytes both ways between the upgraded client and upstream
/// connections (WebSocket and the route's `upgrades`) until either side
/// closes or `idle` passes without a byte either way.
fn spawn_tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    request_id: HeaderValue,
    route: Arc<str>,
    idle: std::time::Duration,
) {
    tokio::spawn(async move {
        let rid = request_id.to_str().unwrap_or("-").to_owned();
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(request_id = %rid, route = &*route, error = %e, "upgrade failed");
                return;
            }
        };
        let client = hyper_util::rt::TokioIo::new(client);
        let mut upstream = hyper_util::rt::TokioIo::new(upstream);
        match tunnel::copy_until_idle(client, &mut upstream, idle).await {
            Ok(tunnel::Ended::Closed { up, down }) => {
                tracing::debug!(request_id = %rid, route = &*route, bytes_up = up, bytes_down = down, "tunnel closed")
            }
            Ok(tunnel::Ended::Idle) => {
                tracing::debug!(request_id = %rid, route = &*route, idle_ms = idle.as_millis() as u64, "tunnel closed: idle")
            }
            Err(e) => {
                tracing::debug!(request_id = %rid, route = &*route, error = %e, "tunnel ended with an error")
            }
        }
    });
}
