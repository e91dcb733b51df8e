//! The engine of `bench/knowledge`: a generated, seeded knowledge base of
//! several labs, written through [`LocalFolderStore`] and indexed by
//! [`KnowledgeIndex`] exactly as the pipeline does it (notebook → Markdown →
//! redact → store → index the stored text), then a question set with known
//! source documents run against it. Prints one JSON object on stdout
//! (progress on stderr).
//!
//! ```text
//! cargo run --release -p westtek-knowledge --example bench -- \
//!     [--labs 8] [--seed 42] [--scale 1.0] [--keep DIR] [--show KIND]
//! ```
//!
//! Corpus, per lab: environments (named `{lab}-{purpose}`), each with a
//! `pip freeze` manifest per snapshot (a `#` header naming the environment
//! and the snapshot's note), an installation history (JSON lines: package,
//! old/new version, time, who, reason) consistent with the manifests, and a
//! generated summary (Markdown); notebooks (`.ipynb` built as JSON, with
//! markdown cells, code cells importing packages, text, table and image
//! outputs, converted with [`notebook_to_markdown`] and redacted: their
//! intros carry an e-mail address); experiment logs (JSON with metrics and a
//! loss history). Titles passed to the index are what a service would pass:
//! the environment and snapshot note for a manifest, the environment for a
//! history, the experiment's name for a log; notebooks and summaries use
//! their `# heading`.
//!
//! Questions, per lab: package versions in a snapshot, reasons for
//! installs, up- and downgrades, which notebook trains a model on a dataset
//! (the model often named by an alias), explores a dataset or draws a
//! figure, experiment metrics, an environment's purpose, Python version and
//! owner. Each names its source document and a fact string the cited span
//! should contain. Cross-lab probes ask one lab's questions in another lab:
//! any hit from a document of another lab is a leak.
//!
//! Measured: recall@5 (the source document among the top-5 hits' paths);
//! citation precision (every returned citation is resolved with
//! [`Citation::resolve`] against the document read back from the store, and
//! must equal the hit's text); whether the span of the first hit from the
//! source document contains the fact; search latency over all queries
//! after a warm-up pass; index build time; corpus size. With `--keep DIR`
//! the store (`DIR/kb`), the index (`DIR/index`) and `DIR/questions.json`
//! (labs, their files, questions) stay for the wrapper's grep peer.

use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use westtek_domain::{EnvironmentId, LabId, SnapshotId, UserId};
use westtek_knowledge::{
    notebook_to_markdown, redact, Citation, DocPath, DocumentStore, IndexDocument, KnowledgeIndex,
    LocalFolderStore, NotebookOptions,
};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, Error>;

const TOP_K: usize = 5;

// ---------------------------------------------------------------- randomness

/// splitmix64: deterministic for a seed, on every platform and version.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn float(&mut self, lo: f64, hi: f64, decimals: i32) -> f64 {
        let x = lo + (hi - lo) * self.unit();
        let m = 10f64.powi(decimals);
        (x * m).round() / m
    }
    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
    fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

// ---------------------------------------------------------------- vocabulary

struct Dataset {
    name: &'static str,
    slug: &'static str,
    target: &'static str,
}

struct LabSpec {
    name: &'static str,
    short: &'static str,
    domain: &'static str,
    researchers: [&'static str; 5],
    datasets: [Dataset; 6],
    columns: [&'static str; 8],
    paper: &'static str,
}

const fn ds(name: &'static str, slug: &'static str, target: &'static str) -> Dataset {
    Dataset { name, slug, target }
}

const LABS: [LabSpec; 8] = [
    LabSpec {
        name: "Okavango Soil Lab",
        short: "soil",
        domain: "okavango-soil.example.org",
        researchers: [
            "Amara Okafor",
            "Tomas Lindqvist",
            "Priya Raman",
            "Jonas Weber",
            "Lerato Dlamini",
        ],
        datasets: [
            ds(
                "Okavango soil cores",
                "okavango_soil_cores",
                "organic carbon",
            ),
            ds(
                "Kalahari moisture sensor grid",
                "kalahari_moisture_grid",
                "volumetric water content",
            ),
            ds("maize yield trials", "maize_yield_trials", "grain yield"),
            ds(
                "nitrogen leaching lysimeters",
                "nitrogen_leaching_lysimeters",
                "nitrate loss",
            ),
            ds(
                "minirhizotron root images",
                "minirhizotron_roots",
                "root length density",
            ),
            ds(
                "drone multispectral survey",
                "drone_multispectral_survey",
                "canopy NDVI",
            ),
        ],
        columns: [
            "ph",
            "clay_fraction",
            "bulk_density",
            "rainfall_mm",
            "depth_cm",
            "site_id",
            "sample_date",
            "conductivity",
        ],
        paper: "Carbon storage in semi-arid floodplain soils",
    },
    LabSpec {
        name: "Helix Genomics Lab",
        short: "helix",
        domain: "helix-genomics.example.org",
        researchers: [
            "Mei Chen",
            "Daniel Okoye",
            "Sofia Marquez",
            "Arjun Patel",
            "Hannah Becker",
        ],
        datasets: [
            ds(
                "tumour RNA-seq cohort",
                "tumour_rnaseq_cohort",
                "relapse risk",
            ),
            ds(
                "single-cell liver atlas",
                "singlecell_liver_atlas",
                "cell type",
            ),
            ds(
                "CRISPR knockout screen",
                "crispr_knockout_screen",
                "guide depletion",
            ),
            ds(
                "placental methylation arrays",
                "placental_methylation",
                "gestational age",
            ),
            ds(
                "exome variant calls",
                "exome_variant_calls",
                "pathogenicity score",
            ),
            ds(
                "nanopore long-read assemblies",
                "nanopore_assemblies",
                "contig completeness",
            ),
        ],
        columns: [
            "gene_id",
            "read_count",
            "tpm",
            "batch",
            "donor_id",
            "gc_content",
            "mapping_quality",
            "library_size",
        ],
        paper: "Transcriptional states predicting early relapse",
    },
    LabSpec {
        name: "Polar Climate Group",
        short: "polar",
        domain: "polar-climate.example.org",
        researchers: [
            "Ingrid Halvorsen",
            "Mateo Rossi",
            "Aisha Bello",
            "Kenji Watanabe",
            "Clara Dubois",
        ],
        datasets: [
            ds(
                "Arctic sea-ice extent series",
                "arctic_sea_ice_extent",
                "September ice extent",
            ),
            ds(
                "ERA5 reanalysis subset",
                "era5_reanalysis_subset",
                "temperature anomaly",
            ),
            ds(
                "Vostok ice core isotopes",
                "vostok_ice_core_isotopes",
                "deuterium excess",
            ),
            ds(
                "Argo float temperature profiles",
                "argo_float_profiles",
                "mixed layer depth",
            ),
            ds(
                "Svalbard permafrost boreholes",
                "svalbard_permafrost_boreholes",
                "active layer thickness",
            ),
            ds("snow radar transects", "snow_radar_transects", "snow depth"),
        ],
        columns: [
            "latitude",
            "longitude",
            "pressure_level",
            "air_temperature",
            "salinity",
            "year",
            "month",
            "albedo",
        ],
        paper: "Accelerated thinning of multi-year sea ice",
    },
    LabSpec {
        name: "Cortex Neuro Lab",
        short: "cortex",
        domain: "cortex-neuro.example.org",
        researchers: [
            "Lucas Moreau",
            "Nadia Hassan",
            "Ethan Brooks",
            "Yuki Tanaka",
            "Fatima Zahra",
        ],
        datasets: [
            ds(
                "overnight EEG sleep recordings",
                "eeg_sleep_recordings",
                "sleep stage",
            ),
            ds(
                "resting-state fMRI scans",
                "resting_state_fmri",
                "connectivity score",
            ),
            ds(
                "Neuropixels spike-sorted units",
                "neuropixels_units",
                "firing rate",
            ),
            ds(
                "mouse open-field videos",
                "mouse_openfield_videos",
                "freezing behaviour",
            ),
            ds(
                "two-photon calcium imaging sessions",
                "calcium_imaging_sessions",
                "fluorescence response",
            ),
            ds(
                "epilepsy seizure annotations",
                "epilepsy_seizure_annotations",
                "seizure onset",
            ),
        ],
        columns: [
            "subject_id",
            "channel",
            "sampling_rate",
            "trial",
            "stimulus",
            "hemisphere",
            "session_date",
            "artifact_flag",
        ],
        paper: "Hippocampal replay during slow-wave sleep",
    },
    LabSpec {
        name: "Alloy Materials Lab",
        short: "alloy",
        domain: "alloy-materials.example.org",
        researchers: [
            "Viktor Novak",
            "Grace Adeyemi",
            "Omar Khalil",
            "Elena Petrova",
            "Samuel Kim",
        ],
        datasets: [
            ds(
                "high-entropy alloy hardness tests",
                "hea_hardness_tests",
                "Vickers hardness",
            ),
            ds("XRD diffraction patterns", "xrd_patterns", "phase fraction"),
            ds(
                "DFT formation energies",
                "dft_formation_energies",
                "formation energy",
            ),
            ds(
                "titanium fatigue curves",
                "titanium_fatigue_curves",
                "cycles to failure",
            ),
            ds(
                "SEM grain micrographs",
                "sem_grain_micrographs",
                "grain size",
            ),
            ds(
                "NMC cathode cycling data",
                "nmc_cathode_cycling",
                "capacity fade",
            ),
        ],
        columns: [
            "composition",
            "anneal_temp_c",
            "lattice_param",
            "strain_rate",
            "cr_fraction",
            "ni_fraction",
            "batch_id",
            "test_rig",
        ],
        paper: "Machine-learned hardness of five-component alloys",
    },
    LabSpec {
        name: "Harbor Epidemiology Unit",
        short: "harbor",
        domain: "harbor-epi.example.org",
        researchers: [
            "Rosa Alvarez",
            "Kwame Mensah",
            "Linnea Berg",
            "Ravi Shankar",
            "Julia Novak",
        ],
        datasets: [
            ds(
                "influenza sentinel surveillance counts",
                "influenza_sentinel_counts",
                "weekly cases",
            ),
            ds(
                "regional hospital admissions registry",
                "hospital_admissions_registry",
                "bed occupancy",
            ),
            ds(
                "wastewater viral load samples",
                "wastewater_viral_loads",
                "viral copies per litre",
            ),
            ds(
                "HPV vaccination cohort",
                "hpv_vaccination_cohort",
                "seroconversion",
            ),
            ds(
                "contact tracing graph",
                "contact_tracing_graph",
                "secondary attack rate",
            ),
            ds(
                "district excess mortality tables",
                "district_excess_mortality",
                "excess deaths",
            ),
        ],
        columns: [
            "district",
            "week",
            "age_band",
            "sex",
            "population",
            "test_positivity",
            "lag_days",
            "vaccinated",
        ],
        paper: "Wastewater signals as an early warning for influenza waves",
    },
    LabSpec {
        name: "Meridian Astronomy Group",
        short: "meridian",
        domain: "meridian-astro.example.org",
        researchers: [
            "Ananya Iyer",
            "Felix Wagner",
            "Chloe Martin",
            "Diego Herrera",
            "Sara Lindholm",
        ],
        datasets: [
            ds(
                "TESS exoplanet transit light curves",
                "tess_transit_lightcurves",
                "planet candidate probability",
            ),
            ds(
                "Galaxy Zoo morphology images",
                "galaxy_zoo_morphology",
                "spiral arm count",
            ),
            ds("SDSS quasar spectra", "sdss_quasar_spectra", "redshift"),
            ds(
                "Cepheid variable star catalogue",
                "cepheid_catalogue",
                "pulsation period",
            ),
            ds(
                "CHIME fast radio burst detections",
                "chime_radio_bursts",
                "dispersion measure",
            ),
            ds(
                "Type Ia supernova photometry",
                "snia_photometry",
                "peak magnitude",
            ),
        ],
        columns: [
            "ra",
            "dec",
            "magnitude",
            "flux_err",
            "exposure_s",
            "filter_band",
            "mjd",
            "snr",
        ],
        paper: "A catalogue of short-period transiting candidates",
    },
    LabSpec {
        name: "Fold Proteomics Lab",
        short: "fold",
        domain: "fold-proteomics.example.org",
        researchers: [
            "Oliver Grant",
            "Leila Farahani",
            "Marcus Johansson",
            "Nina Kowalski",
            "Hiro Sato",
        ],
        datasets: [
            ds(
                "Orbitrap peptide runs",
                "orbitrap_peptide_runs",
                "peptide abundance",
            ),
            ds(
                "thermal protein stability assays",
                "thermal_stability_assays",
                "melting temperature",
            ),
            ds(
                "cryo-EM particle stacks",
                "cryoem_particle_stacks",
                "map resolution",
            ),
            ds(
                "enzyme kinetics plates",
                "enzyme_kinetics_plates",
                "turnover number",
            ),
            ds(
                "nanobody binding affinity screens",
                "nanobody_affinity_screens",
                "dissociation constant",
            ),
            ds(
                "phosphosite quantification runs",
                "phosphosite_quant",
                "phosphorylation ratio",
            ),
        ],
        columns: [
            "protein_id",
            "charge_state",
            "retention_time",
            "intensity",
            "replicate",
            "buffer_ph",
            "concentration_um",
            "plate_well",
        ],
        paper: "Stability landscapes of designed nanobodies",
    },
];

struct Model {
    name: &'static str,
    slug: &'static str,
    aliases: [&'static str; 2],
    import: &'static str,
    /// Constructor with `{n}`, `{lr}`, `{d}` placeholders.
    ctor: &'static str,
}

const MODELS: [Model; 12] = [
    Model {
        name: "gradient boosting",
        slug: "gbm",
        aliases: ["gradient-boosted trees", "boosted regression trees"],
        import: "from sklearn.ensemble import GradientBoostingRegressor",
        ctor: "GradientBoostingRegressor(n_estimators={n}, learning_rate={lr}, max_depth={d})",
    },
    Model {
        name: "random forest",
        slug: "rf",
        aliases: ["bagged decision trees", "forest of randomised trees"],
        import: "from sklearn.ensemble import RandomForestRegressor",
        ctor: "RandomForestRegressor(n_estimators={n}, max_depth={d}, n_jobs=-1)",
    },
    Model {
        name: "XGBoost",
        slug: "xgb",
        aliases: ["xgboost booster", "extreme gradient boosting"],
        import: "import xgboost as xgb",
        ctor: "xgb.XGBRegressor(n_estimators={n}, learning_rate={lr}, max_depth={d})",
    },
    Model {
        name: "LightGBM",
        slug: "lgbm",
        aliases: ["lightgbm booster", "leaf-wise boosted trees"],
        import: "import lightgbm as lgb",
        ctor: "lgb.LGBMRegressor(n_estimators={n}, learning_rate={lr}, num_leaves={d})",
    },
    Model {
        name: "ridge regression",
        slug: "ridge",
        aliases: ["L2-penalised linear model", "regularised linear regression"],
        import: "from sklearn.linear_model import Ridge",
        ctor: "Ridge(alpha={lr})",
    },
    Model {
        name: "logistic regression",
        slug: "logreg",
        aliases: ["logit classifier", "linear classifier"],
        import: "from sklearn.linear_model import LogisticRegression",
        ctor: "LogisticRegression(C={lr}, max_iter={n})",
    },
    Model {
        name: "support vector regression",
        slug: "svr",
        aliases: ["SVR", "kernel machine"],
        import: "from sklearn.svm import SVR",
        ctor: "SVR(C={n}, epsilon={lr})",
    },
    Model {
        name: "convolutional neural network",
        slug: "cnn",
        aliases: ["CNN", "conv net"],
        import: "import torch\nfrom torch import nn",
        ctor: "SmallCNN(channels={d}, dropout={lr})",
    },
    Model {
        name: "LSTM",
        slug: "lstm",
        aliases: ["recurrent network", "long short-term memory model"],
        import: "import torch\nfrom torch import nn",
        ctor: "nn.LSTM(input_size={d}, hidden_size={n}, batch_first=True)",
    },
    Model {
        name: "Gaussian process",
        slug: "gp",
        aliases: ["GP regressor", "kriging model"],
        import: "from sklearn.gaussian_process import GaussianProcessRegressor",
        ctor: "GaussianProcessRegressor(alpha={lr}, normalize_y=True)",
    },
    Model {
        name: "k-nearest neighbours",
        slug: "knn",
        aliases: ["kNN regressor", "nearest-neighbour regressor"],
        import: "from sklearn.neighbors import KNeighborsRegressor",
        ctor: "KNeighborsRegressor(n_neighbors={d})",
    },
    Model {
        name: "transformer encoder",
        slug: "transformer",
        aliases: ["attention model", "self-attention network"],
        import: "import torch\nfrom torch import nn",
        ctor: "nn.TransformerEncoder(layer, num_layers={d})",
    },
];

/// Environment kinds: name suffix, purpose (in the summary), how a question asks for it.
const ENV_KINDS: [(&str, &str, &str); 8] = [
    (
        "ml-cpu",
        "training classical machine learning models on the CPU nodes",
        "classical machine learning without a GPU",
    ),
    (
        "gpu-torch",
        "deep learning with PyTorch on the GPU partition",
        "training neural networks on GPUs",
    ),
    (
        "geo",
        "geospatial processing, raster work and map making",
        "making maps and handling rasters",
    ),
    (
        "stats",
        "statistical modelling, mixed-effects models and power analyses",
        "mixed-effects statistics",
    ),
    (
        "reporting",
        "building the figures and tables for papers and grant reports",
        "producing figures for papers",
    ),
    (
        "legacy-py39",
        "reproducing results of the 2022 pipeline on Python 3.9",
        "rerunning the old 2022 pipeline",
    ),
    (
        "sandbox",
        "trying out new packages before they reach the shared environments",
        "experimenting with new packages",
    ),
    (
        "imaging",
        "image segmentation and microscopy preprocessing",
        "segmenting images",
    ),
];

const SNAPSHOT_NOTES: [&str; 24] = [
    "before the CUDA 12 driver migration",
    "after the reviewer two reanalysis",
    "frozen for the journal submission",
    "before upgrading to pandas 2",
    "after the cluster operating system upgrade",
    "at the end of the spring field campaign",
    "before the numpy 2 transition",
    "used for the annual grant report",
    "before the summer school tutorial",
    "after fixing the broken matplotlib fonts",
    "when the new postdoc onboarded",
    "before the data retention audit",
    "after pinning the BLAS threads",
    "for the conference poster deadline",
    "before migrating notebooks to JupyterLab 4",
    "after the security patch round",
    "for the thesis chapter three results",
    "before the collaborator handover",
    "after the storage quota cleanup",
    "matching the preprint figures",
    "before the external code review",
    "after adding the GPU partition",
    "used in the workshop hands-on session",
    "before retiring the old login node",
];

/// Reasons recorded for an upgrade (`{old}` → `{new}`).
const UPGRADE_REASONS: [&str; 12] = [
    "security advisory for the pickle loader in {pkg} {old}",
    "the {ds} loader needs a function added in {pkg} {new}",
    "wheels for Python 3.12 only exist from {pkg} {new}",
    "deprecation warnings from {pkg} {old} flooded the training logs",
    "a collaborator notebook required the newer {pkg} API",
    "the old {pkg} build conflicted with the numpy 2 ABI",
    "bug fix for timezone handling of the {ds} timestamps",
    "the {pkg} {new} release is about twice as fast for our group-by workloads",
    "license review required a maintained {pkg} release",
    "cluster admins removed the CUDA runtime that {pkg} {old} was built against",
    "a memory leak in {pkg} {old} killed the overnight jobs",
    "thread oversubscription in the old {pkg} build made cross-validation hang",
];

/// Reasons recorded for a downgrade (`{old}` is the newer, bad version).
const DOWNGRADE_REASONS: [&str; 6] = [
    "{pkg} {old} crashed on the new login nodes with an illegal instruction error",
    "reviewer asked us to reproduce with the {pkg} release of the original paper",
    "regression in {pkg} {old} broke the plotting of confidence bands",
    "{pkg} {old} changed default random seeds so results drifted and we pinned back",
    "nightly tests of {env} failed after the upgrade so it was rolled back",
    "the {ds} export script breaks with {pkg} {old}, back to {new} until it is fixed",
];

/// Reasons recorded for a new install.
const INSTALL_REASONS: [&str; 6] = [
    "needed to read HDF5 files written by the beamline software",
    "the {ds} loader imports {pkg}",
    "a collaborator notebook imports {pkg}",
    "faster parquet reads requested in the lab meeting",
    "to match the packages of the shared lab template",
    "trying {pkg} on the {ds} before proposing it to the lab",
];

/// Top-level packages (name, versions oldest first).
const TOP_PACKAGES: [(&str, &[&str]); 30] = [
    ("numpy", &["1.24.4", "1.25.2", "1.26.4", "2.0.2", "2.1.3"]),
    ("pandas", &["1.5.3", "2.0.3", "2.1.4", "2.2.1", "2.2.3"]),
    (
        "scikit-learn",
        &["1.2.2", "1.3.2", "1.4.2", "1.5.1", "1.5.2"],
    ),
    ("scipy", &["1.10.1", "1.11.4", "1.12.0", "1.13.1", "1.14.1"]),
    ("matplotlib", &["3.7.3", "3.8.2", "3.8.4", "3.9.2"]),
    ("seaborn", &["0.12.2", "0.13.0", "0.13.2"]),
    ("xgboost", &["1.7.6", "2.0.3", "2.1.1"]),
    ("lightgbm", &["3.3.5", "4.1.0", "4.3.0", "4.5.0"]),
    ("torch", &["2.0.1", "2.1.2", "2.2.2", "2.3.1", "2.4.1"]),
    (
        "torchvision",
        &["0.15.2", "0.16.2", "0.17.2", "0.18.1", "0.19.1"],
    ),
    ("statsmodels", &["0.13.5", "0.14.0", "0.14.2"]),
    ("jupyterlab", &["3.6.7", "4.0.11", "4.1.8", "4.2.5"]),
    (
        "pyarrow",
        &["12.0.1", "14.0.2", "15.0.2", "16.1.0", "17.0.0"],
    ),
    ("polars", &["0.19.19", "0.20.31", "1.2.1", "1.7.1"]),
    ("xarray", &["2023.6.0", "2023.12.0", "2024.3.0", "2024.7.0"]),
    ("dask", &["2023.5.0", "2023.12.1", "2024.4.2", "2024.8.0"]),
    ("geopandas", &["0.13.2", "0.14.3", "0.14.4", "1.0.1"]),
    ("rasterio", &["1.3.8", "1.3.9", "1.3.10", "1.4.1"]),
    ("shapely", &["2.0.1", "2.0.2", "2.0.4", "2.0.6"]),
    ("statsmodels-extras", &["0.2.0", "0.3.1"]),
    ("scikit-image", &["0.21.0", "0.22.0", "0.23.2", "0.24.0"]),
    (
        "opencv-python",
        &["4.8.0.76", "4.8.1.78", "4.9.0.80", "4.10.0.84"],
    ),
    ("h5py", &["3.9.0", "3.10.0", "3.11.0"]),
    ("numba", &["0.57.1", "0.58.1", "0.59.1", "0.60.0"]),
    ("optuna", &["3.3.0", "3.5.0", "3.6.1", "4.0.0"]),
    ("mlflow", &["2.7.1", "2.10.2", "2.13.2", "2.16.2"]),
    ("plotly", &["5.16.1", "5.18.0", "5.22.0", "5.24.1"]),
    ("pymc", &["5.6.1", "5.10.4", "5.16.2"]),
    ("transformers", &["4.33.3", "4.38.2", "4.41.2", "4.44.2"]),
    ("networkx", &["3.1", "3.2.1", "3.3"]),
];

const DEPENDENCIES: &str =
    "absl-py aiohttp aiosignal anyio argon2-cffi arrow asttokens async-lru attrs babel \
    beautifulsoup4 bleach blinker cachetools certifi cffi charset-normalizer click cloudpickle \
    colorama comm contourpy cycler debugpy decorator defusedxml executing fastjsonschema \
    filelock fonttools fqdn frozenlist fsspec gitpython greenlet grpcio h11 httpcore httpx \
    huggingface-hub idna importlib-metadata ipykernel ipython ipywidgets isoduration \
    itsdangerous jedi jinja2 joblib json5 jsonpointer jsonschema jupyter-client jupyter-core \
    jupyter-events jupyter-lsp jupyter-server jupyterlab-server kiwisolver llvmlite locket \
    lxml markdown markdown-it-py markupsafe matplotlib-inline mdurl mistune mpmath msgpack \
    multidict nbclient nbconvert nbformat nest-asyncio notebook-shim numexpr openpyxl \
    overrides packaging pandocfilters parso partd patsy pexpect pillow platformdirs pluggy \
    prometheus-client prompt-toolkit protobuf psutil ptyprocess pure-eval pycparser pygments \
    pyparsing python-dateutil pytz pyyaml pyzmq referencing regex requests rich rpds-py \
    safetensors send2trash six";

const SENTENCES: [&str; 16] = [
    "Rows with a missing {col} are dropped; they are less than {p} percent of the {ds}.",
    "{col} is log-transformed because its distribution has a long right tail.",
    "We standardise {col} and {col2} per group before fitting.",
    "The split is grouped by {col2} so that no group appears in both train and validation folds.",
    "Values of {col} above the 99th percentile are clipped; the raw values stay in a separate column.",
    "The {target} correlates with {col} (Spearman rho {x}), less so with {col2}.",
    "The last {n} records were collected after an instrument replacement and are flagged.",
    "See the lab wiki page on the {ds} for how the files were exported.",
    "The random seed is fixed to {n} for every run in this notebook.",
    "Results below use {k} folds; the variance between folds is in the last table.",
    "Units: {col} as exported, {target} as in the data dictionary.",
    "We tried interactions between {col} and {col2} but they did not help.",
    "This cell takes about {k} minutes on a CPU node.",
    "Outliers in {col} came from a calibration error and were fixed upstream in the export.",
    "The baseline predicts the median {target} of the training fold.",
    "Remember to rerun the cache cell after pulling new {ds} files.",
];

const EXPLORE_FOCUS: [&str; 5] = [
    "missing values and gaps",
    "seasonal patterns",
    "outliers by group",
    "batch effects between collection rounds",
    "the distribution of every numeric column",
];

const FIGURES: [&str; 8] = [
    "a map of {target} across all sites",
    "learning curves of every model",
    "feature importance of the final model",
    "residuals against {col}",
    "the time series of {target}",
    "the calibration plot of predicted {target}",
    "a correlation heatmap of the {ds}",
    "the ablation results table rendered as bars",
];

const VARIANTS: [&str; 10] = [
    "baseline",
    "ablation without {col} features",
    "seed sweep over ten seeds",
    "learning-rate sweep",
    "class-balanced sample weights",
    "{col} added as an extra feature",
    "trained on 2021 data only",
    "early stopping with patience 20",
    "grouped cross-validation by {col}",
    "quantile loss at the 90th percentile",
];

// ---------------------------------------------------------------- corpus types

/// A generated document: its stored text, and what the index is given.
struct Doc {
    lab: usize,
    kind: &'static str,
    path: DocPath,
    title: Option<String>,
    text: String,
    content_type: &'static str,
}

#[derive(Clone, Serialize)]
struct Question {
    lab: usize,
    kind: &'static str,
    query: String,
    /// The source document (None for nothing).
    expected: Option<String>,
    /// A string the cited span of the source should contain.
    fact: Option<String>,
    /// For a cross-lab probe: the lab whose documents hold the answer.
    probe_of: Option<usize>,
}

#[derive(Default)]
struct Corpus {
    docs: Vec<Doc>,
    questions: Vec<Question>,
    redactions: BTreeMap<String, usize>,
}

fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (k, v) in pairs {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

fn sentence(rng: &mut Rng, lab: &LabSpec, data: &Dataset) -> String {
    let col = rng.pick(&lab.columns).to_string();
    let mut col2 = rng.pick(&lab.columns).to_string();
    if col2 == col {
        col2 = lab.columns[(lab.columns.iter().position(|c| *c == col).unwrap_or(0) + 1) % 8]
            .to_string();
    }
    fill(
        rng.pick::<&str>(&SENTENCES),
        &[
            ("col", &col),
            ("col2", &col2),
            ("ds", data.name),
            ("target", data.target),
            ("p", &format!("{:.1}", rng.float(0.1, 4.0, 1))),
            ("x", &format!("{:.2}", rng.float(0.2, 0.9, 2))),
            ("n", &rng.range(10, 9999).to_string()),
            ("k", &rng.range(3, 12).to_string()),
        ],
    )
}

fn paragraph(rng: &mut Rng, lab: &LabSpec, data: &Dataset, sentences: usize) -> String {
    (0..sentences)
        .map(|_| sentence(rng, lab, data))
        .collect::<Vec<_>>()
        .join(" ")
}

fn date(rng: &mut Rng, year: u32) -> String {
    format!("{year}-{:02}-{:02}", rng.range(1, 12), rng.range(1, 28))
}

// ---------------------------------------------------------------- environments

struct Snapshot {
    id: SnapshotId,
    note: &'static str,
    date: String,
    packages: BTreeMap<String, String>,
    author: &'static str,
}

#[derive(Serialize)]
struct HistoryLine<'a> {
    time: String,
    environment: &'a str,
    package: &'a str,
    action: &'a str,
    old_version: Option<&'a str>,
    new_version: Option<&'a str>,
    by: String,
    reason: String,
}

struct Env {
    name: String,
}

fn handle(name: &str) -> String {
    name.to_lowercase().replace(' ', ".")
}

/// Environments of a lab with manifests, history and summary; questions about them.
fn gen_envs(
    rng: &mut Rng,
    lab_i: usize,
    snapshots: usize,
    corpus: &mut Corpus,
    notebook_titles: &[(String, String)],
) -> Res<Vec<Env>> {
    let lab = &LABS[lab_i];
    let mut envs = Vec::new();
    for (kind, (suffix, purpose, ask)) in ENV_KINDS.iter().enumerate() {
        let name = format!("{}-{suffix}", lab.short);
        let id = EnvironmentId::parse(&rng.uuid())?;
        let owner = *rng.pick(&lab.researchers);
        let python = if *suffix == "legacy-py39" {
            format!("3.9.{}", rng.range(13, 19))
        } else {
            format!("3.{}.{}", rng.range(10, 12), rng.range(1, 9))
        };
        // Initial set: top-level packages (a subset), all dependencies with versions.
        let mut current: BTreeMap<String, String> = BTreeMap::new();
        let mut version_index: BTreeMap<&str, usize> = BTreeMap::new();
        for (pkg, versions) in TOP_PACKAGES.iter() {
            if rng.chance(0.6) {
                let v = rng.below(versions.len().saturating_sub(1).max(1));
                version_index.insert(pkg, v);
                current.insert(pkg.to_string(), versions[v].to_string());
            }
        }
        for dep in DEPENDENCIES.split_whitespace() {
            if rng.chance(0.85) {
                current.insert(
                    dep.to_string(),
                    format!(
                        "{}.{}.{}",
                        rng.range(0, 9),
                        rng.range(0, 30),
                        rng.range(0, 12)
                    ),
                );
            }
        }
        let mut history = Vec::new();
        let start_year = 2023;
        let created = date(rng, start_year);
        for (pkg, v) in &version_index {
            history.push(HistoryLine {
                time: format!(
                    "{created}T09:{:02}:{:02}Z",
                    rng.range(0, 59),
                    rng.range(0, 59)
                ),
                environment: "",
                package: pkg,
                action: "install",
                old_version: None,
                new_version: Some(
                    TOP_PACKAGES
                        .iter()
                        .find(|p| p.0 == *pkg)
                        .map(|p| p.1[*v])
                        .unwrap_or("0"),
                ),
                by: handle(owner),
                reason: "initial build from the lab template".to_string(),
            });
        }
        let mut notes: Vec<&'static str> = SNAPSHOT_NOTES.to_vec();
        rng.shuffle(&mut notes);
        let mut snaps = Vec::new();
        let mut month = 1;
        let mut question_changes = Vec::new();
        for (s, note) in notes.iter().take(snapshots).enumerate() {
            // 1–3 changes before every snapshot but the first.
            if s > 0 {
                for _ in 0..rng.range(1, 3) {
                    let (pkg, versions) = *rng.pick(&TOP_PACKAGES);
                    let when = format!(
                        "{}-{:02}-{:02}T{:02}:{:02}:00Z",
                        start_year + 1 + (month / 12) as u32,
                        month % 12 + 1,
                        rng.range(1, 28),
                        rng.range(8, 19),
                        rng.range(0, 59)
                    );
                    let who = *rng.pick(&lab.researchers);
                    let data = rng.pick(&lab.datasets);
                    let old = version_index.get(pkg).copied();
                    let (action, new_i) = match old {
                        None => ("install", rng.below(versions.len())),
                        Some(o) if o + 1 < versions.len() && rng.chance(0.75) => {
                            ("upgrade", o + 1 + rng.below(versions.len() - o - 1))
                        }
                        Some(o) if o > 0 => ("downgrade", o - 1),
                        Some(_) => continue,
                    };
                    let old_v = old.map(|o| versions[o]);
                    let new_v = versions[new_i];
                    let reason = fill(
                        rng.pick::<&str>(match action {
                            "upgrade" => &UPGRADE_REASONS[..],
                            "downgrade" => &DOWNGRADE_REASONS[..],
                            _ => &INSTALL_REASONS[..],
                        }),
                        &[
                            ("pkg", pkg),
                            ("old", old_v.unwrap_or("none")),
                            ("new", new_v),
                            ("ds", data.name),
                            ("env", &name),
                        ],
                    );
                    version_index.insert(pkg, new_i);
                    current.insert(pkg.to_string(), new_v.to_string());
                    question_changes.push(history.len());
                    history.push(HistoryLine {
                        time: when,
                        environment: "",
                        package: pkg,
                        action,
                        old_version: old_v,
                        new_version: Some(new_v),
                        by: handle(who),
                        reason,
                    });
                }
            }
            month += rng.range(1, 2);
            snaps.push(Snapshot {
                id: SnapshotId::parse(&rng.uuid())?,
                note,
                date: format!(
                    "{}-{:02}-{:02}",
                    start_year + 1 + (month / 12) as u32,
                    month % 12 + 1,
                    rng.range(1, 28)
                ),
                packages: current.clone(),
                author: rng.pick::<&str>(&lab.researchers),
            });
        }
        // Manifests.
        for (s, snap) in snaps.iter().enumerate() {
            let path = DocPath::package_manifest(id, snap.id);
            let mut text = format!(
                "# pip freeze of environment {name} ({})\n# snapshot {} of {}: {}, taken {} by {}\n",
                lab.name,
                s + 1,
                snaps.len(),
                snap.note,
                snap.date,
                snap.author
            );
            for (pkg, v) in &snap.packages {
                text.push_str(&format!("{pkg}=={v}\n"));
            }
            corpus.docs.push(Doc {
                lab: lab_i,
                kind: "manifest",
                path,
                title: Some(format!("Packages of {name}, snapshot {}", snap.note)),
                text,
                content_type: "text/plain; charset=utf-8",
            });
        }
        // History.
        let env_name = name.clone();
        let mut text = String::new();
        for h in &history {
            let line = HistoryLine {
                environment: &env_name,
                time: h.time.clone(),
                by: h.by.clone(),
                reason: h.reason.clone(),
                ..*h
            };
            text.push_str(&serde_json::to_string(&line)?);
            text.push('\n');
        }
        let history_path = DocPath::installation_history(id);
        corpus.docs.push(Doc {
            lab: lab_i,
            kind: "history",
            path: history_path.clone(),
            title: Some(format!("Installation history of {name}")),
            text,
            content_type: "application/x-ndjson",
        });
        // Questions: versions in snapshots, reasons for changes.
        for _ in 0..2 {
            let snap = &snaps[rng.below(snaps.len())];
            let tops: Vec<(&String, &String)> = snap
                .packages
                .iter()
                .filter(|(p, _)| TOP_PACKAGES.iter().any(|t| t.0 == p.as_str()))
                .collect();
            let (pkg, v) = tops[rng.below(tops.len())];
            let query = match rng.below(3) {
                0 => format!(
                    "Which version of {pkg} did {name} have in the snapshot taken {}?",
                    snap.note
                ),
                1 => format!(
                    "{name}: what {pkg} release was pinned in the snapshot {}?",
                    snap.note
                ),
                _ => format!(
                    "In the {name} environment, which {pkg} was installed {}?",
                    snap.note
                ),
            };
            corpus.questions.push(Question {
                lab: lab_i,
                kind: "manifest version",
                query,
                expected: Some(DocPath::package_manifest(id, snap.id).to_string()),
                fact: Some(format!("{pkg}=={v}")),
                probe_of: None,
            });
        }
        // Changes whose (package, action) is unique in the env, so the question has one answer.
        let unique: Vec<usize> = question_changes
            .iter()
            .copied()
            .filter(|&i| {
                history
                    .iter()
                    .filter(|h| h.package == history[i].package && h.action == history[i].action)
                    .count()
                    == 1
            })
            .collect();
        for &i in unique.iter().take(2) {
            let h = &history[i];
            let new = h.new_version.unwrap_or("");
            let query = match (h.action, rng.below(2)) {
                ("upgrade", 0) => format!("Why was {} upgraded to {new} in {name}?", h.package),
                ("upgrade", _) => {
                    format!("What was the reason {name} moved to a newer {}?", h.package)
                }
                ("downgrade", 0) => format!(
                    "Why did someone downgrade {} in the {name} environment?",
                    h.package
                ),
                ("downgrade", _) => {
                    format!("Reason for rolling {} back to {new} in {name}", h.package)
                }
                (_, 0) => format!("Why was {} added to {name}?", h.package),
                _ => format!("Who installed {} in {name} and why?", h.package),
            };
            corpus.questions.push(Question {
                lab: lab_i,
                kind: "history reason",
                query,
                expected: Some(history_path.to_string()),
                fact: Some(h.reason.clone()),
                probe_of: None,
            });
        }
        // Summary.
        let d1 = rng.pick(&lab.datasets).name;
        let d2 = rng.pick(&lab.datasets).name;
        let purpose_line = format!("Used for {purpose}, mostly with the {d1} and the {d2}.");
        let mut text = format!(
            "# Environment {name}\n\n{} · owner {owner} · Python {python} · created {created} from the `{}` template.\n\n## Purpose\n\n{purpose_line}\n\n## Key packages\n\n| package | version |\n|---|---|\n",
            lab.name,
            rng.pick(&["ml-base", "minimal", "geo-base", "gpu-base"]),
        );
        if let Some(last) = snaps.last() {
            for (pkg, v) in &last.packages {
                if TOP_PACKAGES.iter().any(|t| t.0 == pkg.as_str()) {
                    text.push_str(&format!("| {pkg} | {v} |\n"));
                }
            }
        }
        text.push_str("\n## Snapshots\n\n");
        for snap in &snaps {
            text.push_str(&format!(
                "- {} — {} ({} packages)\n",
                snap.date,
                snap.note,
                snap.packages.len()
            ));
        }
        text.push_str("\n## Notebooks that run here\n\n");
        for _ in 0..rng.range(3, 6) {
            let (rel, title) = rng.pick(notebook_titles);
            text.push_str(&format!("- `{rel}` — {title}\n"));
        }
        text.push_str(&format!(
            "\n## Known issues\n\n- {}\n- Ask on the lab channel before upgrading shared packages; the on-call phone is +49 30 901820{:02}.\n",
            paragraph(rng, lab, rng_dataset(lab, kind), 2),
            kind
        ));
        let summary_path = DocPath::environment_summary(id);
        corpus.docs.push(Doc {
            lab: lab_i,
            kind: "summary",
            path: summary_path.clone(),
            title: None,
            text,
            content_type: "text/markdown; charset=utf-8",
        });
        let (query, fact) = match kind % 3 {
            0 => (
                format!("Which {} environment is meant for {ask}?", lab.short),
                purpose_line.clone(),
            ),
            1 => (
                format!("What Python version does {name} run?"),
                format!("Python {python}"),
            ),
            _ => (
                format!("Who owns the {name} environment?"),
                format!("owner {owner}"),
            ),
        };
        corpus.questions.push(Question {
            lab: lab_i,
            kind: "environment summary",
            query,
            expected: Some(summary_path.to_string()),
            fact: Some(fact),
            probe_of: None,
        });
        envs.push(Env { name });
    }
    Ok(envs)
}

fn rng_dataset(lab: &LabSpec, i: usize) -> &Dataset {
    &lab.datasets[i % lab.datasets.len()]
}

// ---------------------------------------------------------------- notebooks

fn md_cell(text: String) -> serde_json::Value {
    json!({"cell_type": "markdown", "metadata": {}, "source": text})
}

fn code_cell(n: usize, source: String, outputs: Vec<serde_json::Value>) -> serde_json::Value {
    json!({"cell_type": "code", "execution_count": n, "metadata": {}, "source": source, "outputs": outputs})
}

fn stream(text: String) -> serde_json::Value {
    json!({"output_type": "stream", "name": "stdout", "text": text})
}

fn result(n: usize, text: String) -> serde_json::Value {
    json!({"output_type": "execute_result", "execution_count": n, "metadata": {}, "data": {"text/plain": text}})
}

fn image() -> serde_json::Value {
    json!({"output_type": "display_data", "metadata": {},
           "data": {"image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
                    "text/plain": "<Figure size 640x480 with 1 Axes>"}})
}

fn table(rng: &mut Rng, cols: &[&str], rows: usize) -> String {
    let mut out = format!("{:>4}", "");
    for c in cols {
        out.push_str(&format!(" {c:>14}"));
    }
    out.push('\n');
    for r in 0..rows {
        out.push_str(&format!("{r:>4}"));
        for _ in cols {
            out.push_str(&format!(" {:>14.3}", rng.float(-5.0, 500.0, 3)));
        }
        out.push('\n');
    }
    out
}

struct NotebookPlan {
    kind: &'static str,
    dataset: usize,
    model: usize,
    extra: usize,
}

struct Notebook {
    rel: String,
    title: String,
    json: serde_json::Value,
    /// (question, fact) pairs.
    questions: Vec<(&'static str, String, String)>,
}

fn gen_notebook(rng: &mut Rng, lab: &LabSpec, researcher: &str, plan: &NotebookPlan) -> Notebook {
    let data = &lab.datasets[plan.dataset];
    let model = &MODELS[plan.model];
    let email = format!("{}@{}", handle(researcher), lab.domain);
    let mut cells = Vec::new();
    let mut n = 0;
    let cols: Vec<&str> = {
        let mut c = lab.columns.to_vec();
        rng.shuffle(&mut c);
        c.into_iter().take(6).collect()
    };
    let (rel, title, mut questions) = match plan.kind {
        "train" => {
            let title = match rng.below(3) {
                0 => format!("Training a {} on the {}", model.name, data.name),
                1 => format!("{} prediction with {}", capitalise(data.target), model.name),
                _ => format!("{}: {} model", capitalise(data.name), model.name),
            };
            let alias = if rng.chance(0.5) {
                model.aliases[rng.below(2)]
            } else {
                model.name
            };
            let query = match rng.below(3) {
                0 => format!("Which notebook trains the {alias} on the {}?", data.name),
                1 => format!(
                    "Where do we fit a {alias} to predict {} from the {} data?",
                    data.target, data.name
                ),
                _ => format!("notebook with the {alias} for {}", data.target),
            };
            let ctor = fill(
                model.ctor,
                &[
                    ("n", &rng.range(50, 2000).to_string()),
                    ("lr", &format!("{}", rng.float(0.01, 0.3, 2))),
                    ("d", &rng.range(3, 64).to_string()),
                ],
            );
            let fact = format!("model = {ctor}");
            (
                format!("{}/train_{}.ipynb", data.slug, model.slug),
                title,
                vec![
                    (
                        if alias == model.name {
                            "notebook model (named)"
                        } else {
                            "notebook model (alias)"
                        },
                        query,
                        fact.clone(),
                    ),
                    ("_ctor", fact, String::new()),
                ],
            )
        }
        "explore" => {
            let focus = EXPLORE_FOCUS[plan.extra % EXPLORE_FOCUS.len()];
            let title = format!("Exploring the {}: {focus}", data.name);
            let query = match rng.below(2) {
                0 => format!("Which notebook looks at {focus} in the {}?", data.name),
                _ => format!("EDA of {focus} for {}", data.name),
            };
            (
                format!("{}/explore_{}.ipynb", data.slug, plan.extra),
                title.clone(),
                vec![("notebook explore", query, format!("# {title}"))],
            )
        }
        _ => {
            let fig = plan.extra + 1;
            let what = fill(
                FIGURES[plan.extra % FIGURES.len()],
                &[("target", data.target), ("col", cols[0]), ("ds", data.name)],
            );
            let title = format!("Figure {fig} of the paper: {what}");
            let query = match rng.below(2) {
                0 => format!(
                    "Which notebook draws figure {fig} ({what}) of \"{}\"?",
                    lab.paper
                ),
                _ => format!("code that plots {what} for the paper figure {fig}"),
            };
            (
                format!("paper/figure_{fig}.ipynb"),
                title.clone(),
                vec![("notebook figure", query, format!("# {title}"))],
            )
        }
    };
    cells.push(md_cell(format!(
        "# {title}\n\n{researcher}, {}. Questions to {email}.\n\n{}",
        lab.name,
        paragraph(rng, lab, data, 3)
    )));
    let mut imports =
        String::from("import pandas as pd\nimport numpy as np\nimport matplotlib.pyplot as plt\n");
    if plan.kind == "train" {
        imports.push_str(model.import);
        imports.push_str("\nfrom sklearn.model_selection import GroupKFold\nfrom sklearn.metrics import mean_squared_error, r2_score\n");
    } else if plan.kind == "figure" {
        imports.push_str("import seaborn as sns\n");
    }
    cells.push(code_cell(bump(&mut n), imports, vec![]));
    cells.push(md_cell(format!(
        "## Load the {}\n\n{}",
        data.name,
        paragraph(rng, lab, data, 2)
    )));
    let rows = rng.range(800, 60000);
    cells.push(code_cell(
        bump(&mut n),
        format!(
            "df = pd.read_parquet('data/{}.parquet')\nprint(df.shape)\ndf.head(8)",
            data.slug
        ),
        vec![
            stream(format!("({rows}, {})\n", cols.len() + 1)),
            result(n, table(rng, &cols, 8)),
        ],
    ));
    cells.push(md_cell(format!(
        "## Cleaning\n\n{}",
        paragraph(rng, lab, data, 4)
    )));
    let mut clean = String::new();
    for c in &cols[..4] {
        clean.push_str(&format!(
            "df['{c}'] = df['{c}'].clip(df['{c}'].quantile(0.01), df['{c}'].quantile(0.99))\n"
        ));
    }
    clean.push_str(&format!(
        "df = df.dropna(subset=['{}'])\ndf.describe()",
        cols[0]
    ));
    cells.push(code_cell(
        bump(&mut n),
        clean,
        vec![result(n, table(rng, &cols, 8))],
    ));
    match plan.kind {
        "train" => {
            let ctor_fact = questions
                .iter()
                .find(|q| q.0 == "_ctor")
                .map(|q| q.1.clone())
                .unwrap_or_default();
            cells.push(md_cell(format!(
                "## Train the model\n\nWe fit a {} to predict {} with grouped folds. {}",
                model.name,
                data.target,
                paragraph(rng, lab, data, 2)
            )));
            let mut log = String::new();
            let folds = rng.range(5, 10);
            for f in 0..folds {
                for step in [100, 200, 300] {
                    log.push_str(&format!(
                        "fold {f} step {step}: train_loss={:.4} val_loss={:.4}\n",
                        rng.float(0.05, 0.6, 4),
                        rng.float(0.08, 0.7, 4)
                    ));
                }
            }
            cells.push(code_cell(
                bump(&mut n),
                format!(
                    "X, y = df[{:?}], df['target']\ngroups = df['{}']\n{ctor_fact}\nscores = []\nfor k, (tr, va) in enumerate(GroupKFold({folds}).split(X, y, groups)):\n    model.fit(X.iloc[tr], y.iloc[tr])\n    scores.append(mean_squared_error(y.iloc[va], model.predict(X.iloc[va])) ** 0.5)",
                    &cols[..5],
                    cols[5]
                ),
                vec![stream(log)],
            ));
            cells.push(md_cell(format!(
                "## Evaluation\n\n{}",
                paragraph(rng, lab, data, 3)
            )));
            cells.push(code_cell(
                bump(&mut n),
                "print(f'RMSE {np.mean(scores):.3f} ± {np.std(scores):.3f}')\npd.DataFrame({'fold': range(len(scores)), 'rmse': scores})".to_string(),
                vec![
                    stream(format!("RMSE {:.3} ± {:.3}\n", rng.float(0.1, 2.0, 3), rng.float(0.01, 0.2, 3))),
                    result(n, table(rng, &["fold", "rmse", "mae", "r2"], folds)),
                ],
            ));
        }
        "explore" => {
            cells.push(md_cell(format!(
                "## Looking at {}\n\n{}",
                EXPLORE_FOCUS[plan.extra % EXPLORE_FOCUS.len()],
                paragraph(rng, lab, data, 4)
            )));
            cells.push(code_cell(
                bump(&mut n),
                format!("df.isna().mean().sort_values()\ndf.groupby('{}').agg(['mean', 'std', 'count'])", cols[1]),
                vec![result(n, table(rng, &cols, 12)), image()],
            ));
            cells.push(md_cell(format!(
                "## Findings\n\n{}",
                paragraph(rng, lab, data, 4)
            )));
        }
        _ => {
            cells.push(md_cell(format!(
                "## Plot\n\n{}",
                paragraph(rng, lab, data, 3)
            )));
            cells.push(code_cell(
                bump(&mut n),
                format!(
                    "fig, ax = plt.subplots(figsize=(7, 4))\nsns.lineplot(data=df, x='{}', y='{}', hue='{}', ax=ax)\nfig.savefig('figures/figure.pdf')",
                    cols[0], cols[1], cols[2]
                ),
                vec![image()],
            ));
            cells.push(md_cell(format!(
                "## Caption draft\n\n{}",
                paragraph(rng, lab, data, 3)
            )));
        }
    }
    cells.push(md_cell(format!(
        "## Notes\n\n{}",
        paragraph(rng, lab, data, 3)
    )));
    questions.retain(|q| q.0 != "_ctor");
    let json = json!({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": cells,
    });
    Notebook {
        rel,
        title,
        json,
        questions,
    }
}

fn bump(n: &mut usize) -> usize {
    *n += 1;
    *n
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- experiments

#[derive(Serialize)]
struct Metrics {
    val_rmse: f64,
    val_mae: f64,
    val_r2: f64,
    test_rmse: f64,
}

#[derive(Serialize)]
struct Step {
    step: usize,
    train_loss: f64,
    val_loss: f64,
    learning_rate: f64,
}

#[derive(Serialize)]
struct ExperimentLog {
    experiment_id: String,
    name: String,
    lab: &'static str,
    researcher: &'static str,
    environment: String,
    notebook: String,
    dataset: &'static str,
    model: &'static str,
    variant: String,
    status: &'static str,
    started: String,
    metrics: Metrics,
    params: BTreeMap<&'static str, f64>,
    notes: String,
    history: Vec<Step>,
}

// ---------------------------------------------------------------- generation

struct Args {
    labs: usize,
    seed: u64,
    scale: f64,
    keep: Option<PathBuf>,
    show: Option<String>,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        labs: 8,
        seed: 42,
        scale: 1.0,
        keep: None,
        show: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--labs" => args.labs = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            "--scale" => args.scale = value()?.parse()?,
            "--keep" => args.keep = Some(PathBuf::from(value()?)),
            "--show" => args.show = Some(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if !(2..=LABS.len()).contains(&args.labs) || args.scale <= 0.0 {
        return Err(format!("need 2 ≤ --labs ≤ {} and --scale > 0", LABS.len()).into());
    }
    Ok(args)
}

fn generate(args: &Args, lab_ids: &[LabId]) -> Res<Corpus> {
    let mut rng = Rng(args.seed);
    let mut corpus = Corpus::default();
    let scaled = |n: f64| ((n * args.scale).round() as usize).max(1);
    for (lab_i, &lab_id) in lab_ids.iter().enumerate() {
        let lab = &LABS[lab_i];
        let researchers: Vec<(UserId, &'static str)> = lab
            .researchers
            .iter()
            .map(|r| Ok((UserId::parse(&rng.uuid())?, *r)))
            .collect::<Res<_>>()?;
        // Notebook plans: training (dataset × model), exploration, figures.
        let mut plans = Vec::new();
        let mut combos: Vec<(usize, usize)> = (0..6)
            .flat_map(|d| (0..MODELS.len()).map(move |m| (d, m)))
            .collect();
        rng.shuffle(&mut combos);
        for &(d, m) in combos.iter().take(scaled(64.0).min(combos.len())) {
            plans.push(NotebookPlan {
                kind: "train",
                dataset: d,
                model: m,
                extra: 0,
            });
        }
        for d in 0..6 {
            for f in 0..scaled(5.0).min(EXPLORE_FOCUS.len()) {
                plans.push(NotebookPlan {
                    kind: "explore",
                    dataset: d,
                    model: 0,
                    extra: f,
                });
            }
        }
        for f in 0..FIGURES.len() {
            plans.push(NotebookPlan {
                kind: "figure",
                dataset: rng.below(6),
                model: 0,
                extra: f,
            });
        }
        let mut notebook_titles = Vec::new();
        let mut train_notebooks = Vec::new();
        let mut nb_questions = Vec::new();
        for plan in &plans {
            let (rid, rname) = *rng.pick(&researchers);
            let nb = gen_notebook(&mut rng, lab, rname, plan);
            let rel = nb.rel.trim_end_matches(".ipynb").to_string() + ".md";
            let path = DocPath::notebook(lab_id, rid, &rel)?;
            let bytes = serde_json::to_vec(&nb.json)?;
            let md = notebook_to_markdown(&bytes, &NotebookOptions::default())?;
            let (md, report) = md.redacted();
            for r in report.redactions() {
                *corpus
                    .redactions
                    .entry(r.kind.as_str().to_string())
                    .or_default() += 1;
            }
            for (kind, query, fact) in nb.questions {
                nb_questions.push(Question {
                    lab: lab_i,
                    kind,
                    query,
                    expected: Some(path.to_string()),
                    fact: Some(fact),
                    probe_of: None,
                });
            }
            if plan.kind == "train" {
                train_notebooks.push((plan.dataset, plan.model, path.clone(), rname));
            }
            notebook_titles.push((rel, nb.title));
            corpus.docs.push(Doc {
                lab: lab_i,
                kind: "notebook",
                path,
                title: None,
                text: md.text,
                content_type: "text/markdown; charset=utf-8",
            });
        }
        // A sample of notebook questions: all kinds represented.
        rng.shuffle(&mut nb_questions);
        let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
        for q in nb_questions {
            let cap = match q.kind {
                "notebook model (named)" | "notebook model (alias)" => 3,
                _ => 2,
            };
            let c = per_kind.entry(q.kind).or_default();
            if *c < cap {
                *c += 1;
                corpus.questions.push(q);
            }
        }
        let envs = gen_envs(
            &mut rng,
            lab_i,
            scaled(12.0).min(SNAPSHOT_NOTES.len()),
            &mut corpus,
            &notebook_titles,
        )?;
        // Experiments: a variant of a training notebook's (dataset, model).
        let mut seen = BTreeSet::new();
        let mut exp_questions = Vec::new();
        let target = scaled(60.0);
        let mut attempts = 0;
        while seen.len() < target && attempts < target * 20 {
            attempts += 1;
            let (d, m, nb_path, rname) = train_notebooks[rng.below(train_notebooks.len())].clone();
            let v = rng.below(VARIANTS.len());
            let col = *rng.pick(&lab.columns);
            if !seen.insert((d, m, v)) {
                continue;
            }
            let data = &lab.datasets[d];
            let model = &MODELS[m];
            let variant = fill(VARIANTS[v], &[("col", col)]);
            let exp_id = format!("exp-{:04}", seen.len());
            let env = &envs[if model.import.contains("torch") { 1 } else { 0 }];
            let steps = rng.range(25, 45);
            let mut lr = rng.float(0.001, 0.1, 4);
            let history: Vec<Step> = (1..=steps)
                .map(|s| {
                    if s % 10 == 0 {
                        lr = (lr * 0.5 * 10000.0).round() / 10000.0;
                    }
                    Step {
                        step: s * 10,
                        train_loss: rng.float(0.05, 1.0, 4),
                        val_loss: rng.float(0.08, 1.2, 4),
                        learning_rate: lr,
                    }
                })
                .collect();
            let log = ExperimentLog {
                experiment_id: exp_id.clone(),
                name: format!("{} on the {}: {variant}", model.name, data.name),
                lab: lab.name,
                researcher: rname,
                environment: env.name.clone(),
                notebook: nb_path.to_string(),
                dataset: data.name,
                model: model.name,
                variant: variant.clone(),
                status: "completed",
                started: format!(
                    "{}T{:02}:{:02}:00Z",
                    date(&mut rng, 2024),
                    rng.range(0, 23),
                    rng.range(0, 59)
                ),
                metrics: Metrics {
                    val_rmse: rng.float(0.05, 3.0, 4),
                    val_mae: rng.float(0.03, 2.0, 4),
                    val_r2: rng.float(0.3, 0.98, 4),
                    test_rmse: rng.float(0.05, 3.0, 4),
                },
                params: [
                    ("seed", rng.range(0, 9999) as f64),
                    ("folds", rng.range(3, 10) as f64),
                    ("learning_rate", rng.float(0.001, 0.3, 4)),
                ]
                .into_iter()
                .collect(),
                notes: paragraph(&mut rng, lab, data, 2),
                history,
            };
            let text = serde_json::to_string_pretty(&log)?;
            let path = DocPath::experiment_log(lab_id, &exp_id)?;
            let (metric, label, value) = match rng.below(3) {
                0 => ("val_rmse", "validation RMSE", log.metrics.val_rmse),
                1 => ("val_r2", "validation R²", log.metrics.val_r2),
                _ => ("test_rmse", "test-set RMSE", log.metrics.test_rmse),
            };
            let alias = if rng.chance(0.5) {
                model.aliases[rng.below(2)]
            } else {
                model.name
            };
            exp_questions.push(Question {
                lab: lab_i,
                kind: if alias == model.name {
                    "experiment metric (named)"
                } else {
                    "experiment metric (alias)"
                },
                query: format!(
                    "What {label} did the {variant} experiment with the {alias} on the {} reach?",
                    data.name
                ),
                expected: Some(path.to_string()),
                fact: Some(format!("\"{metric}\": {}", serde_json::to_string(&value)?)),
                probe_of: None,
            });
            corpus.docs.push(Doc {
                lab: lab_i,
                kind: "experiment",
                path,
                title: Some(log.name.clone()),
                text,
                content_type: "application/json",
            });
        }
        rng.shuffle(&mut exp_questions);
        corpus.questions.extend(exp_questions.into_iter().take(8));
    }
    // Redaction of every non-notebook document (notebooks were redacted as Markdown).
    for doc in corpus.docs.iter_mut().filter(|d| d.kind != "notebook") {
        let (text, report) = redact(&doc.text);
        for r in report.redactions() {
            *corpus
                .redactions
                .entry(r.kind.as_str().to_string())
                .or_default() += 1;
        }
        doc.text = text;
    }
    // Cross-lab probes: questions of lab A (notebooks, experiments) asked in lab A+1.
    let labs = lab_ids.len();
    let mut probes = Vec::new();
    for a in 0..labs {
        let own: Vec<&Question> = corpus
            .questions
            .iter()
            .filter(|q| {
                q.lab == a
                    && (q.kind.starts_with("notebook")
                        || q.kind.starts_with("experiment")
                        || q.kind == "manifest version")
            })
            .collect();
        let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
        for q in own {
            let family = q.kind.split(' ').next().unwrap_or("");
            let cap = if family == "manifest" { 2 } else { 3 };
            let c = taken.entry(family).or_default();
            if *c >= cap {
                continue;
            }
            *c += 1;
            probes.push(Question {
                lab: (a + 1) % labs,
                kind: "cross-lab probe",
                query: q.query.clone(),
                expected: None,
                fact: None,
                probe_of: Some(a),
            });
        }
    }
    corpus.questions.extend(probes);
    Ok(corpus)
}

// ---------------------------------------------------------------- measurement

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let temp;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let mut seed_rng = Rng(args.seed ^ 0x5eed);
    let lab_ids: Vec<LabId> = (0..args.labs)
        .map(|_| LabId::parse(&seed_rng.uuid()))
        .collect::<Result<_, _>>()?;

    eprintln!(
        "generating the corpus ({} labs, seed {}, scale {})",
        args.labs, args.seed, args.scale
    );
    let t = Instant::now();
    let corpus = generate(&args, &lab_ids)?;
    let generate_s = t.elapsed().as_secs_f64();
    let bytes: usize = corpus.docs.iter().map(|d| d.text.len()).sum();
    eprintln!(
        "  {} documents, {:.1} MB, {} questions in {generate_s:.1} s",
        corpus.docs.len(),
        bytes as f64 / 1e6,
        corpus.questions.len()
    );

    // Store (atomic, fsynced writes), a few at a time.
    let store = LocalFolderStore::new(dir.join("kb"))?;
    let t = Instant::now();
    for batch in corpus.docs.chunks(16) {
        let mut set = tokio::task::JoinSet::new();
        for doc in batch {
            let (store, path, text, ct) = (
                store.clone(),
                doc.path.clone(),
                doc.text.clone(),
                doc.content_type,
            );
            set.spawn(async move { store.put(&path, text.as_bytes(), ct).await });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
    }
    let store_s = t.elapsed().as_secs_f64();
    eprintln!("  stored in {store_s:.1} s");

    // Read back: the index is fed exactly the stored text.
    let mut stored: BTreeMap<DocPath, String> = BTreeMap::new();
    for doc in &corpus.docs {
        let got = store
            .get(&doc.path)
            .await?
            .ok_or_else(|| format!("{} vanished from the store", doc.path))?;
        let text = String::from_utf8(got.bytes)?;
        if text != doc.text {
            return Err(format!("{} reads back different bytes", doc.path).into());
        }
        stored.insert(doc.path.clone(), text);
    }
    let owner: BTreeMap<&DocPath, usize> = corpus.docs.iter().map(|d| (&d.path, d.lab)).collect();

    // Index, one batch (one commit) per lab.
    let index = KnowledgeIndex::open(dir.join("index"))?;
    let t = Instant::now();
    let mut children = 0;
    for (lab_i, &lab_id) in lab_ids.iter().enumerate() {
        let docs: Vec<IndexDocument<'_>> = corpus
            .docs
            .iter()
            .filter(|d| d.lab == lab_i)
            .map(|d| IndexDocument {
                lab_id,
                path: &d.path,
                title: d.title.as_deref(),
                text: stored.get(&d.path).map(String::as_str).unwrap_or(""),
            })
            .collect();
        children += index.index_documents(&docs)?;
    }
    let index_s = t.elapsed().as_secs_f64();
    let mut chunks_per_lab = Vec::new();
    for &lab_id in &lab_ids {
        chunks_per_lab.push(index.chunk_count(lab_id)?);
    }
    let chunks: usize = chunks_per_lab.iter().sum();
    eprintln!("  indexed {children} child chunks ({chunks} counted) in {index_s:.1} s");

    // Facts must survive redaction (else the question is not answerable as written).
    let mut facts_missing = Vec::new();
    for q in &corpus.questions {
        if let (Some(exp), Some(fact)) = (&q.expected, &q.fact) {
            let present = DocPath::parse(exp)
                .ok()
                .and_then(|p| stored.get(&p))
                .is_some_and(|t| t.contains(fact.as_str()));
            if !present {
                facts_missing.push(json!({"query": q.query, "fact": fact}));
            }
        }
    }

    // Warm-up pass, then the timed pass.
    for q in &corpus.questions {
        index.search(lab_ids[q.lab], &q.query, TOP_K)?;
    }
    let mut latencies = Vec::new();
    let mut results = Vec::new();
    for q in &corpus.questions {
        let t = Instant::now();
        let hits = index.search(lab_ids[q.lab], &q.query, TOP_K)?;
        latencies.push(ms(t.elapsed()));
        results.push(hits);
    }
    // `--show KIND`: the hits of the first three questions of a kind, on stderr.
    if let Some(kind) = &args.show {
        for (q, hits) in corpus
            .questions
            .iter()
            .zip(&results)
            .filter(|(q, _)| q.kind == kind.as_str())
            .take(3)
        {
            eprintln!(
                "Q [{}] {}\n  expected {:?}, fact {:?}",
                q.kind, q.query, q.expected, q.fact
            );
            for h in hits {
                let head: String = h.text.chars().take(100).collect();
                eprintln!(
                    "  {:.2} {} [{}..{}] {:?}",
                    h.score, h.citation.path, h.citation.start, h.citation.end, head
                );
            }
        }
    }
    // Diagnostic (not the product's behaviour): the first 5 *distinct*
    // documents among the top 50 children, i.e. what collapsing hits per
    // document in the library would give.
    let mut distinct_found = 0;
    for q in corpus.questions.iter().filter(|q| q.probe_of.is_none()) {
        let Some(expected) = &q.expected else {
            continue;
        };
        let hits = index.search(lab_ids[q.lab], &q.query, 50)?;
        let mut docs: Vec<&str> = Vec::new();
        for h in &hits {
            if !docs.contains(&h.citation.path.as_str()) {
                docs.push(h.citation.path.as_str());
            }
        }
        if docs.iter().take(TOP_K).any(|d| d == expected) {
            distinct_found += 1;
        }
    }

    // Metrics.
    let mut answerable = 0;
    let mut found = 0;
    let mut top1 = 0;
    let mut per_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut fact_kind: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut duplicate_hits = 0;
    let mut citations = 0;
    let mut citations_ok = 0;
    let mut bad_citations = Vec::new();
    let mut with_source = 0;
    let mut fact_first = 0;
    let mut fact_any = 0;
    let mut leaks = 0;
    let mut probe_hits = 0;
    let mut misses = Vec::new();
    for (q, hits) in corpus.questions.iter().zip(&results) {
        for h in hits {
            citations += 1;
            let ok = check_citation(&store, &h.citation, &h.text).await?;
            if ok {
                citations_ok += 1;
            } else if bad_citations.len() < 10 {
                bad_citations.push(json!({"path": h.citation.path, "start": h.citation.start, "end": h.citation.end}));
            }
            match owner.get(&h.citation.path) {
                Some(&l) if l == q.lab => {}
                _ => leaks += 1,
            }
        }
        if q.probe_of.is_some() {
            probe_hits += hits.len();
            continue;
        }
        let Some(expected) = &q.expected else {
            continue;
        };
        answerable += 1;
        let entry = per_kind.entry(q.kind).or_default();
        entry.0 += 1;
        let distinct: BTreeSet<&str> = hits.iter().map(|h| h.citation.path.as_str()).collect();
        duplicate_hits += hits.len() - distinct.len();
        let pos = hits
            .iter()
            .position(|h| h.citation.path.as_str() == expected);
        if let Some(pos) = pos {
            found += 1;
            entry.1 += 1;
            if pos == 0 {
                top1 += 1;
            }
            if let Some(fact) = &q.fact {
                with_source += 1;
                let fk = fact_kind.entry(q.kind).or_default();
                fk.0 += 1;
                let cited = |h: &westtek_knowledge::SearchHit| {
                    stored
                        .get(&h.citation.path)
                        .and_then(|t| h.citation.resolve(t))
                        .is_some_and(|s| s.contains(fact.as_str()))
                };
                if cited(&hits[pos]) {
                    fact_first += 1;
                    fk.1 += 1;
                }
                if hits
                    .iter()
                    .filter(|h| h.citation.path.as_str() == expected)
                    .any(cited)
                {
                    fact_any += 1;
                    fk.2 += 1;
                }
            }
        } else if misses.len() < 400 {
            misses.push(json!({
                "kind": q.kind, "query": q.query, "expected": expected,
                "got": hits.iter().map(|h| h.citation.path.as_str()).collect::<Vec<_>>(),
            }));
        }
    }
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let mut docs_per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &corpus.docs {
        *docs_per_kind.entry(d.kind).or_default() += 1;
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };

    if let Some(keep) = &args.keep {
        let labs_json: Vec<_> = lab_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                json!({"index": i, "lab_id": id, "name": LABS[i].name,
                       "files": corpus.docs.iter().filter(|d| d.lab == i).map(|d| d.path.as_str()).collect::<Vec<_>>()})
            })
            .collect();
        let qs = json!({"kb_root": dir.join("kb"), "labs": labs_json, "questions": corpus.questions, "top_k": TOP_K});
        std::fs::write(keep.join("questions.json"), serde_json::to_vec_pretty(&qs)?)?;
    }

    let out = json!({
        "labs": args.labs,
        "seed": args.seed,
        "scale": args.scale,
        "documents": corpus.docs.len(),
        "documents_per_kind": docs_per_kind,
        "corpus_bytes": bytes,
        "child_chunks": chunks,
        "child_chunks_per_lab": chunks_per_lab,
        "redactions": corpus.redactions,
        "generate_s": generate_s,
        "store_s": store_s,
        "index_build_s": index_s,
        "index_bytes": dir_size(&dir.join("index")),
        "questions": corpus.questions.len(),
        "answerable": answerable,
        "probes": corpus.questions.len() - answerable,
        "probe_hits": probe_hits,
        "recall_at_5": ratio(found, answerable),
        "recall_at_1": ratio(top1, answerable),
        "recall_per_kind": per_kind.iter().map(|(k, (n, f))| (k.to_string(), json!({"n": n, "found": f, "recall": ratio(*f, *n)}))).collect::<BTreeMap<_, _>>(),
        "citations": citations,
        "citations_resolved": citations_ok,
        "citation_precision": ratio(citations_ok, citations),
        "bad_citations": bad_citations,
        "fact_in_first_source_citation": ratio(fact_first, with_source),
        "fact_per_kind": fact_kind.iter().map(|(k, (n, f, a))| (k.to_string(), json!({"n": n, "first": ratio(*f, *n), "any": ratio(*a, *n)}))).collect::<BTreeMap<_, _>>(),
        "recall_at_5_distinct_documents": ratio(distinct_found, answerable),
        "duplicate_document_hits": duplicate_hits,
        "fact_in_any_source_citation": ratio(fact_any, with_source),
        "facts_missing_from_stored_text": facts_missing,
        "leaks": leaks,
        "latency_ms": {"p50": pct(&sorted, 50.0), "p95": pct(&sorted, 95.0), "p99": pct(&sorted, 99.0),
                        "max": sorted.last().copied().unwrap_or(0.0),
                        "mean": sorted.iter().sum::<f64>() / sorted.len().max(1) as f64, "n": sorted.len()},
        "misses": misses,
        "total_s": started.elapsed().as_secs_f64(),
        "dir": args.keep,
    });
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// The citation resolves in the document read back from the store, lies
/// within it, is not empty, and is exactly the hit's text.
async fn check_citation(store: &LocalFolderStore, c: &Citation, text: &str) -> Res<bool> {
    let Some(doc) = store.get(&c.path).await? else {
        return Ok(false);
    };
    let Ok(doc) = String::from_utf8(doc.bytes) else {
        return Ok(false);
    };
    Ok(c.start < c.end && c.end <= doc.len() && c.resolve(&doc) == Some(text))
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
