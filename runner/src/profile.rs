//! Load profiles: TFB's exact load phase, and a quick one that answers in minutes on a laptop.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    /// TFB's primer: a short run at 8 connections before the warmup.
    pub primer_seconds: u32,
    /// The warmup at the highest concurrency; TFB's lasts a full level.
    pub warmup_seconds: u32,
    pub duration_seconds: u32,
    /// json, db and fortune.
    pub concurrency_levels: Vec<u32>,
    /// plaintext, pipelined `pipeline_depth` deep.
    pub pipeline_concurrency_levels: Vec<u32>,
    pub pipeline_depth: u32,
    /// query and update: rows per request, all at `query_concurrency`.
    pub query_levels: Vec<u32>,
    pub query_concurrency: u32,
    /// cached-query: rows per request, at `query_concurrency` (TFB: 1, 10, 20, 50, 100).
    #[serde(default = "tfb_cached_query_levels")]
    pub cached_query_levels: Vec<u32>,
    /// Pauses TFB makes after the primer and warmup, and between levels.
    pub pause_after_warmup_seconds: u32,
    pub pause_between_levels_seconds: u32,
    /// Measurements per level; the entry keeps the median and every run's requests/s.
    #[serde(default = "one")]
    pub repeat: u32,
    /// After a type's levels, fixed-rate latency runs at these fractions of its headline
    /// requests/s (empty: none), each `duration_seconds` long.
    #[serde(default)]
    pub latency_rates: Vec<f64>,
}

fn one() -> u32 {
    1
}

fn tfb_cached_query_levels() -> Vec<u32> {
    vec![1, 10, 20, 50, 100]
}

/// The profiles `--profile` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileName {
    /// Minutes on a laptop: two levels per type, five seconds each.
    Quick,
    /// TFB's exact load phase.
    Tfb,
}

impl Profile {
    pub fn named(name: ProfileName) -> Self {
        match name {
            ProfileName::Tfb => Self {
                name: "tfb".to_owned(),
                primer_seconds: 5,
                warmup_seconds: 15,
                duration_seconds: 15,
                concurrency_levels: vec![16, 32, 64, 128, 256, 512],
                pipeline_concurrency_levels: vec![256, 1024, 4096, 16384],
                pipeline_depth: 16,
                query_levels: vec![1, 5, 10, 15, 20],
                query_concurrency: 512,
                cached_query_levels: tfb_cached_query_levels(),
                pause_after_warmup_seconds: 5,
                pause_between_levels_seconds: 2,
                repeat: 1,
                latency_rates: vec![0.25, 0.5, 0.75],
            },
            ProfileName::Quick => Self {
                name: "quick".to_owned(),
                primer_seconds: 1,
                warmup_seconds: 2,
                duration_seconds: 5,
                concurrency_levels: vec![64, 256],
                pipeline_concurrency_levels: vec![256, 1024],
                pipeline_depth: 16,
                query_levels: vec![1, 20],
                query_concurrency: 256,
                cached_query_levels: vec![1, 100],
                pause_after_warmup_seconds: 0,
                pause_between_levels_seconds: 1,
                repeat: 1,
                // Off: three more runs per type would double the quick profile's minutes.
                latency_rates: Vec::new(),
            },
        }
    }

    /// The rows-per-request levels of a `queries`-style type: cached-query has its own.
    pub fn rows_per_request_levels(&self, test_type: conformance::TestType) -> &[u32] {
        if test_type == conformance::TestType::CachedQuery {
            &self.cached_query_levels
        } else {
            &self.query_levels
        }
    }

    /// The fixed-rate latency runs `test_type` gets: none for plaintext, whose peak is measured
    /// pipelined 16 deep, which a fixed-rate generator sending one request at a time per
    /// connection cannot reproduce; a fraction of that peak would measure another test.
    pub fn latency_rates_of(&self, test_type: conformance::TestType) -> &[f64] {
        if test_type == conformance::TestType::Plaintext {
            &[]
        } else {
            &self.latency_rates
        }
    }

    /// The highest concurrency: TFB's warmup level.
    pub fn max_concurrency(&self) -> u32 {
        self.concurrency_levels.iter().copied().max().unwrap_or(1)
    }
}
