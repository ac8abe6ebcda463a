//! Fixtures for the laboratory tests: the lab endpoints' paths, orders taken through their
//! steps, `multipart/form-data` bodies built by hand (so that a test can send any file name or
//! declared type), small files of each accepted kind, synthetic ECG recordings, and SHA-256 to
//! check what the server says of the bytes.

use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use carehub_ecg::synth::{self, SynthConfig, SynthRhythm};
use carehub_ecg::wfdb::SignalFormat;

use crate::TestApp;
use crate::clinic::Person;

/// `/api/v1/lab-tests`.
pub const LAB_TESTS: &str = "/api/v1/lab-tests";
/// `/api/v1/lab-orders`.
pub const LAB_ORDERS: &str = "/api/v1/lab-orders";

pub fn order_path(id: impl std::fmt::Display) -> String {
    format!("{LAB_ORDERS}/{id}")
}

/// The path of a step of an order: `schedule`, `collect`, `results`, `release` or `cancel`.
pub fn step_path(id: impl std::fmt::Display, step: &str) -> String {
    format!("{LAB_ORDERS}/{id}/{step}")
}

pub fn files_path(id: impl std::fmt::Display) -> String {
    format!("{LAB_ORDERS}/{id}/files")
}

pub fn file_path(id: impl std::fmt::Display, file_id: impl std::fmt::Display) -> String {
    format!("{LAB_ORDERS}/{id}/files/{file_id}")
}

pub fn ecg_path(id: impl std::fmt::Display) -> String {
    format!("{LAB_ORDERS}/{id}/ecg")
}

/// The clinical question [`order_input`] asks.
pub const QUESTION: &str = "Fatigue for a month; anaemia?";

/// A valid order of `tests` for `patient`.
pub fn order_input(patient: Uuid, tests: &[&str], priority: &str) -> Value {
    json!({
        "patient_id": patient,
        "tests": tests,
        "priority": priority,
        "clinical_question": QUESTION,
    })
}

/// One value of a result.
pub fn value(test: &str, analyte: &str, value: f64) -> Value {
    json!({ "test": test, "analyte": analyte, "value": value })
}

/// The id of an order, a file or any document with an `id`, as text.
pub fn id_text(document: &Value) -> String {
    document["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {document}"))
        .to_owned()
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub struct Part {
    /// The form field: `file` or `sampling_rate`.
    pub field: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl Part {
    /// A part named `file`, with no declared type.
    pub fn file(name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            field: "file".into(),
            file_name: Some(name.into()),
            content_type: None,
            bytes: bytes.into(),
        }
    }

    /// The same part declared as `content_type`.
    #[must_use]
    pub fn declared(self, content_type: &str) -> Self {
        Self {
            content_type: Some(content_type.into()),
            ..self
        }
    }

    /// A `sampling_rate` field.
    pub fn sampling_rate(hz: &str) -> Self {
        Self {
            field: "sampling_rate".into(),
            file_name: None,
            content_type: None,
            bytes: hz.as_bytes().to_vec(),
        }
    }
}

const BOUNDARY: &str = "carehub-test-boundary-7f3a9c";

/// The content type of the bodies [`multipart`] writes.
pub const MULTIPART: &str = "multipart/form-data; boundary=carehub-test-boundary-7f3a9c";

/// The bytes of a `multipart/form-data` body of `parts` (sent as [`MULTIPART`]), as written:
/// file names and declared types go exactly as given.
pub fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.field);
        if let Some(name) = &part.file_name {
            disposition.push_str(&format!("; filename=\"{name}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = &part.content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A small PDF.
pub fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
      2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n\
      trailer << /Root 1 0 R >>\n%%EOF\n"
        .to_vec()
}

/// A 1x1 PNG image.
pub fn png() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
        )
        .expect("a PNG")
}

/// The rhythm of a synthetic recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rhythm {
    /// Clean sinus rhythm at 70 bpm.
    Sinus,
    /// Atrial fibrillation at about 100 bpm.
    AtrialFibrillation,
}

/// 30 seconds of one lead at 250 Hz, the same for the same rhythm every time.
pub fn recording(rhythm: Rhythm) -> synth::SynthRecord {
    let config = match rhythm {
        Rhythm::Sinus => SynthConfig {
            seed: 7,
            sampling_rate_hz: 250.0,
            duration_secs: 30.0,
            heart_rate_bpm: 70.0,
            rhythm: SynthRhythm::Sinus { variability: 0.03 },
            noise_mv: 0.01,
            ..SynthConfig::default()
        },
        Rhythm::AtrialFibrillation => SynthConfig {
            seed: 31,
            sampling_rate_hz: 250.0,
            duration_secs: 30.0,
            heart_rate_bpm: 100.0,
            rhythm: SynthRhythm::AtrialFibrillation {
                irregularity: 0.2,
                f_wave_mv: 0.08,
            },
            noise_mv: 0.02,
            baseline_wander_mv: 0.1,
            ..SynthConfig::default()
        },
    };
    synth::generate(&config).expect("a valid synthetic configuration")
}

/// The recording as a WFDB format 212 pair, `{name}.hea` and `{name}.dat`.
pub fn wfdb_parts(rhythm: Rhythm, name: &str) -> Vec<Part> {
    let (header, signal) = recording(rhythm).to_wfdb(name, SignalFormat::Format212);
    vec![
        Part::file(&format!("{name}.hea"), header.into_bytes()),
        Part::file(&format!("{name}.dat"), signal),
    ]
}

/// The recording as one column of CSV with its sampling rate.
pub fn csv_parts(rhythm: Rhythm, name: &str) -> Vec<Part> {
    let record = recording(rhythm);
    let text = synth::to_csv(&record.leads, record.sampling_rate_hz, false);
    vec![
        Part::file(&format!("{name}.csv"), text.into_bytes()),
        Part::sampling_rate("250"),
    ]
}

impl TestApp {
    /// Orders tests as `doctor`, panicking unless it succeeds; returns the order.
    pub async fn order_tests(&self, doctor: &Person, input: &Value) -> Value {
        let response = self.post_json(LAB_ORDERS, doctor.token(), input).await;
        assert_eq!(response.status(), 201, "ordering {input}");
        response.json().await.expect("an order")
    }

    /// Takes a step of an order (`schedule`, `collect`, `results`, `release`, `cancel`) as
    /// `who` with `body`, panicking unless it succeeds; returns the order.
    pub async fn lab_step(&self, who: &Person, id: &str, step: &str, body: &Value) -> Value {
        let response = self
            .post_json(&step_path(id, step), who.token(), body)
            .await;
        assert_eq!(
            response.status(),
            200,
            "{step} of order {id} as {}",
            who.username
        );
        response.json().await.expect("an order")
    }

    /// `doctor` orders `tests` for `patient` and `lab` collects the sample; returns the
    /// order's id.
    pub async fn collected_order(
        &self,
        doctor: &Person,
        lab: &Person,
        patient: Uuid,
        tests: &[&str],
    ) -> String {
        let order = self
            .order_tests(doctor, &order_input(patient, tests, "routine"))
            .await;
        let id = id_text(&order);
        self.lab_step(lab, &id, "collect", &json!({})).await;
        id
    }

    /// Sends `parts` to the order's files as `token`.
    pub async fn upload(&self, token: Option<&str>, id: &str, parts: &[Part]) -> Response {
        let mut request = self
            .client
            .post(self.url(&files_path(id)))
            .header("content-type", MULTIPART)
            .body(multipart(parts));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// Uploads `parts` as `lab`, panicking unless it succeeds; returns the files as stored.
    pub async fn uploaded(&self, lab: &Person, id: &str, parts: &[Part]) -> Vec<Value> {
        let response = self.upload(lab.token(), id, parts).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(status, 201, "the upload to order {id}: {body}");
        body.as_array().expect("a list of files").clone()
    }

    /// The caller's notifications of `kind` about the order `id`.
    pub async fn lab_notifications(&self, who: &Person, kind: &str, id: &str) -> Vec<Value> {
        self.all_notifications(&who.token)
            .await
            .into_iter()
            .filter(|n| n["kind"] == kind && n["data"]["lab_order_id"] == id)
            .collect()
    }
}

/// Lowercase hexadecimal SHA-256 of `bytes` (FIPS 180-4), computed here so that the tests do
/// not take the server's word for it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    #[rustfmt::skip]
    const K: [u32; 64] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4,
        0xab1c_5ed5, 0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe,
        0x9bdc_06a7, 0xc19b_f174, 0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f,
        0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da, 0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7,
        0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967, 0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc,
        0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85, 0xa2bf_e8a1, 0xa81a_664b,
        0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070, 0x19a4_c116,
        0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7,
        0xc671_78f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ];
    let mut message = bytes.to_vec();
    let bit_len = (bytes.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, value) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(value);
        }
    }
    h.iter().map(|word| format!("{word:08x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::sha256_hex;

    #[test]
    fn sha256_matches_the_standard_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }
}
