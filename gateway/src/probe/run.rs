//! Running the scenarios against the endpoint: the compliant claims built once from the
//! settings, each scenario's request derived from them, sent, and its answer judged against
//! what the scenario expects.

use serde_json::{json, Map, Value};

use super::args::Settings;
use super::client::{Client, Request, Response};
use super::jws::{now, random_token, unverified_claims, uuid_v4, Alg, SigningKey};
use super::report::{Outcome, Verdict};
use super::scenarios::{Expect, Group, Kind, Scenario, CATALOGUE};
use super::token::Discovery;

/// What every scenario shares.
pub struct Context<'a> {
    /// The settings.
    pub settings: &'a Settings,
    /// The HTTP client.
    pub client: &'a Client,
    /// The bearer token.
    pub token: String,
    /// The discovery document, when one was read.
    pub discovery: Option<Discovery>,
    /// The audience (given, or the discovery document's issuer).
    pub audience: String,
}

impl Context<'_> {
    fn register_url(&self) -> url::Url {
        let mut u = self.settings.endpoint.clone();
        u.set_path(&format!(
            "{}/register",
            self.settings.endpoint.path().trim_end_matches('/')
        ));
        u
    }

    fn client_url(&self, client_id: &str) -> url::Url {
        let mut u = self.register_url();
        u.set_path(&format!("{}/{client_id}", u.path()));
        u
    }

    /// The claims of a compliant update (with `client_id`) or create (without).
    pub fn compliant_claims(&self, with_client_id: bool) -> Map<String, Value> {
        let s = self.settings;
        let ssa = s.ssa.as_deref().and_then(unverified_claims);
        let ssa_str = |name: &str| {
            ssa.as_ref()
                .and_then(|c| c.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let at = now();
        let mut c = Map::new();
        let iss = ssa_str("software_id").unwrap_or_else(|| s.client_id.clone());
        c.insert("iss".into(), json!(iss));
        c.insert("aud".into(), json!(self.audience));
        c.insert("iat".into(), json!(at));
        c.insert("exp".into(), json!(at + 300));
        c.insert("jti".into(), json!(uuid_v4()));
        if with_client_id {
            c.insert("client_id".into(), json!(s.client_id));
        }
        c.insert(
            "token_endpoint_auth_method".into(),
            json!("tls_client_auth"),
        );
        c.insert("tls_client_auth_dn".into(), json!(s.tls_client_auth_dn));
        c.insert("id_token_signed_response_alg".into(), json!("PS256"));
        c.insert("request_object_signing_alg".into(), json!("PS256"));
        c.insert(
            "grant_types".into(),
            json!(["authorization_code", "client_credentials", "refresh_token"]),
        );
        c.insert("response_types".into(), json!(["code id_token"]));
        c.insert("application_type".into(), json!("web"));
        let redirect_uris: Value = if s.redirect_uris.is_empty() {
            ssa.as_ref()
                .and_then(|c| c.get("software_redirect_uris").cloned())
                .unwrap_or_else(|| json!([]))
        } else {
            json!(s.redirect_uris)
        };
        c.insert("redirect_uris".into(), redirect_uris);
        c.insert("scope".into(), json!(s.scope));
        if let Some(org) = s.org_name.clone().or_else(|| ssa_str("org_name")) {
            c.insert("org_name".into(), json!(org));
        }
        match &s.ssa {
            Some(ssa) => {
                c.insert("software_statement".into(), json!(ssa));
                if let Some(id) = ssa_str("software_id") {
                    c.insert("software_id".into(), json!(id));
                }
            }
            None => {
                if let Some(uri) = &s.jwks_uri {
                    c.insert("jwks_uri".into(), json!(uri));
                }
            }
        }
        c
    }

    fn put(
        &self,
        client_id: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Request {
        let mut r = Request::new("PUT", self.client_url(client_id))
            .header("x-fapi-interaction-id", &uuid_v4());
        if let Some(t) = token {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        r.body(content_type, body)
    }

    fn post(&self, body: Vec<u8>) -> Request {
        Request::new("POST", self.register_url())
            .header("x-fapi-interaction-id", &uuid_v4())
            .body("application/jwt", body)
    }

    fn bodiless(&self, method: &'static str, client_id: &str, token: &str) -> Request {
        Request::new(method, self.client_url(client_id))
            .header("x-fapi-interaction-id", &uuid_v4())
            .header("Authorization", &format!("Bearer {token}"))
    }
}

/// Why a scenario does not run with these settings, if it does not.
fn skipped(scenario: &Scenario, settings: &Settings, ran: &[Outcome]) -> Option<String> {
    if scenario.writes && !settings.allow_writes {
        return Some("writes at a compliant endpoint: run with --allow-writes".into());
    }
    match scenario.group {
        Group::Lifecycle if !settings.lifecycle => {
            return Some("lifecycle routes: run with --lifecycle".into())
        }
        Group::SoftwareStatement if settings.ssa.is_none() => {
            return Some("needs a software statement: --ssa".into())
        }
        Group::Discovery if settings.discovery.is_none() => {
            return Some("needs a discovery document: --discovery".into())
        }
        _ => {}
    }
    if scenario.kind == Kind::ReadAfterDelete {
        let deleted = ran
            .iter()
            .any(|o| o.name == "lifecycle_delete" && o.verdict == Verdict::Pass);
        if !deleted {
            return Some("needs lifecycle_delete to have succeeded".into());
        }
    }
    None
}

/// Run every scenario, in catalogue order.
pub async fn run_all(ctx: &Context<'_>) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    for scenario in CATALOGUE {
        let outcome = match skipped(scenario, ctx.settings, &outcomes) {
            Some(why) => Outcome::skipped(scenario, why),
            None => run_one(ctx, scenario).await,
        };
        outcomes.push(outcome);
    }
    outcomes
}

async fn run_one(ctx: &Context<'_>, scenario: &Scenario) -> Outcome {
    if scenario.kind == Kind::DiscoveryRegistrationEndpoint {
        return discovery_outcome(ctx, scenario);
    }
    let request = match build(ctx, scenario.kind) {
        Ok(r) => r,
        Err(e) => return Outcome::broken(scenario, format!("cannot build the request: {e}")),
    };
    if scenario.kind == Kind::ReplayedJti {
        match ctx.client.send(&request).await {
            Ok(first) if (200..300).contains(&first.status) => {}
            Ok(first) => {
                let mut o = judge(scenario, &first);
                o.verdict = Verdict::Fail;
                o.note = Some(format!(
                    "the first (compliant) request was not accepted: {}",
                    first.status
                ));
                return o;
            }
            Err(e) => {
                return Outcome::broken(scenario, format!("no answer to the first request: {e}"))
            }
        }
    }
    match ctx.client.send(&request).await {
        Ok(r) => judge(scenario, &r),
        Err(e) => Outcome::broken(scenario, format!("no answer: {e}")),
    }
}

fn build(ctx: &Context<'_>, kind: Kind) -> Result<Request, String> {
    let key = &ctx.settings.signing_key;
    let token = ctx.token.as_str();
    let me = ctx.settings.client_id.as_str();
    let sign = |kind: Kind, with_client_id: bool, key: &SigningKey, alg: Alg| {
        let mut claims = ctx.compliant_claims(with_client_id);
        super::scenarios::tweak_claims(kind, &mut claims, now());
        key.sign(alg, &Value::Object(claims))
    };
    let jwt = "application/jwt";
    Ok(match kind {
        Kind::CompliantUpdate
        | Kind::ReplayedJti
        | Kind::Expired
        | Kind::NotYetValid
        | Kind::WrongAudience
        | Kind::DnOfAnotherCertificate
        | Kind::RedirectNotHttps
        | Kind::RedirectNotInSsa
        | Kind::ScopeOutsideAllowed
        | Kind::ResponseTypesToken
        | Kind::TokenAuthSigningAlgRs256 => {
            let body = sign(kind, true, key, Alg::Ps256)?;
            ctx.put(me, Some(token), jwt, body.into_bytes())
        }
        Kind::SignedRs256 => ctx.put(
            me,
            Some(token),
            jwt,
            sign(kind, true, key, Alg::Rs256)?.into_bytes(),
        ),
        Kind::AlgNone => ctx.put(
            me,
            Some(token),
            jwt,
            sign(kind, true, key, Alg::None)?.into_bytes(),
        ),
        Kind::UnpublishedKey => {
            let stranger = SigningKey::unpublished()?;
            ctx.put(
                me,
                Some(token),
                jwt,
                sign(kind, true, &stranger, Alg::Ps256)?.into_bytes(),
            )
        }
        Kind::NoBearerToken => ctx.put(
            me,
            None,
            jwt,
            sign(kind, true, key, Alg::Ps256)?.into_bytes(),
        ),
        Kind::ForeignBearerToken => {
            let foreign = random_token(32);
            ctx.put(
                me,
                Some(&foreign),
                jwt,
                sign(kind, true, key, Alg::Ps256)?.into_bytes(),
            )
        }
        Kind::UpdateOtherClientId => {
            let other = other_client_id();
            ctx.put(
                &other,
                Some(token),
                jwt,
                sign(kind, true, key, Alg::Ps256)?.into_bytes(),
            )
        }
        Kind::JsonContentType => {
            let claims = Value::Object(ctx.compliant_claims(true));
            ctx.put(
                me,
                Some(token),
                "application/json",
                claims.to_string().into_bytes(),
            )
        }
        Kind::OversizedBody => {
            // A JWT-looking body (base64url characters and two dots) of exactly 1 MiB.
            let mut body = vec![b'A'; 1024 * 1024];
            body[100] = b'.';
            body[200] = b'.';
            ctx.put(me, Some(token), jwt, body)
        }
        Kind::Create | Kind::CreateExpired | Kind::CreateResponseTypesToken => {
            ctx.post(sign(kind, false, key, Alg::Ps256)?.into_bytes())
        }
        Kind::Read | Kind::ReadAfterDelete => ctx.bodiless("GET", me, token),
        Kind::ReadForeignBearerToken => ctx.bodiless("GET", me, &random_token(32)),
        Kind::ReadOtherClientId => ctx.bodiless("GET", &other_client_id(), token),
        Kind::Delete => ctx.bodiless("DELETE", me, token),
        Kind::DiscoveryRegistrationEndpoint => return Err("not an HTTP scenario".into()),
    })
}

/// A ClientId no bank gave anyone.
fn other_client_id() -> String {
    format!("dcrgate-probe-{}", uuid_v4())
}

/// Compare the answer with what the scenario expects.
fn judge(scenario: &Scenario, r: &Response) -> Outcome {
    let error = r.member("error");
    let description = r.member("error_description");
    let got = match &error {
        Some(e) => format!("{} {e}", r.status),
        None => r.status.to_string(),
    };
    let (pass, note) = match scenario.expect {
        Expect::Success { preferred } => {
            let ok = (200..300).contains(&r.status);
            let note = (ok && r.status != preferred)
                .then(|| format!("{preferred} is the status the specification names"));
            (ok, note)
        }
        Expect::Refused {
            status,
            error: want,
            optional,
        } => {
            let error_ok = match &error {
                Some(e) => e == want,
                None => optional,
            };
            (r.status == status && error_ok, None)
        }
        Expect::RegistrationEndpoint => (false, None),
    };
    Outcome {
        name: scenario.name,
        conformance: scenario.conformance,
        expected: scenario.expect.label(),
        got,
        verdict: if pass { Verdict::Pass } else { Verdict::Fail },
        description,
        note,
        hint: (!pass).then_some(scenario.hint),
    }
}

fn discovery_outcome(ctx: &Context<'_>, scenario: &Scenario) -> Outcome {
    let want = ctx.register_url().to_string();
    let got = ctx
        .discovery
        .as_ref()
        .and_then(|d| d.registration_endpoint.clone());
    let pass = got
        .as_deref()
        .is_some_and(|g| g.trim_end_matches('/') == want.trim_end_matches('/'));
    Outcome {
        name: scenario.name,
        conformance: scenario.conformance,
        expected: format!("registration_endpoint {want}"),
        got: got.unwrap_or_else(|| "no registration_endpoint".into()),
        verdict: if pass { Verdict::Pass } else { Verdict::Fail },
        description: None,
        note: None,
        hint: (!pass).then_some(scenario.hint),
    }
}
