//! `[telemetry]`: the OTLP endpoint (the key, else
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) and the sample ratio (README "Tracing").

use super::Validator;
use crate::config::model::Telemetry;
use crate::config::parse::otlp_uri;
use crate::config::raw::RawTelemetry;

impl Validator<'_> {
    /// `[telemetry]` (README "Tracing"): the OTLP base URL, from the key
    /// or else from `OTEL_EXPORTER_OTLP_ENDPOINT`, and the sample ratio.
    pub(super) fn telemetry(&mut self, raw: Option<RawTelemetry>) -> Option<Telemetry> {
        let RawTelemetry {
            otlp_endpoint,
            sample_ratio,
        } = raw.unwrap_or(RawTelemetry {
            otlp_endpoint: None,
            sample_ratio: None,
        });
        let mut ok = true;
        let endpoint = match &otlp_endpoint {
            Some(s) => self
                .optional_uri(s, "telemetry.otlp_endpoint", otlp_uri)
                .unwrap_or_else(|()| {
                    ok = false;
                    None
                }),
            None => match (self.env)("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.is_empty()) {
                Some(v) => match otlp_uri(&v) {
                    Ok(u) => Some(u),
                    Err(m) => {
                        self.err(0..0, format!("OTEL_EXPORTER_OTLP_ENDPOINT: {m}"));
                        ok = false;
                        None
                    }
                },
                None => None,
            },
        };
        let ratio = match &sample_ratio {
            None => 1.0,
            Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
            Some(r) => {
                self.err(
                    r.span(),
                    format!(
                        "telemetry.sample_ratio: {} is not between 0.0 and 1.0 (e.g. 0.1 samples one new trace in ten)",
                        r.get_ref()
                    ),
                );
                ok = false;
                1.0
            }
        };
        ok.then_some(Telemetry {
            otlp_endpoint: endpoint,
            sample_ratio: ratio,
        })
    }
}
