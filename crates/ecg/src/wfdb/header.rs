//! The WFDB header (`.hea`): the record line and one line per signal, read the way the WFDB
//! library and wfdb-python read them (comments, blank lines and optional fields included).

use super::WfdbError;

/// A storage format of samples in a signal file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalFormat {
    /// 8-bit offset binary (sample + 128).
    Format80,
    /// 16-bit two's complement, little-endian.
    Format16,
    /// 16-bit two's complement, big-endian.
    Format61,
    /// 16-bit offset binary, little-endian.
    Format160,
    /// Two 12-bit two's complement samples packed in three bytes.
    Format212,
}

impl SignalFormat {
    /// The format's number in a header.
    pub fn code(self) -> u16 {
        match self {
            Self::Format80 => 80,
            Self::Format16 => 16,
            Self::Format61 => 61,
            Self::Format160 => 160,
            Self::Format212 => 212,
        }
    }

    fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            80 => Self::Format80,
            16 => Self::Format16,
            61 => Self::Format61,
            160 => Self::Format160,
            212 => Self::Format212,
            _ => return None,
        })
    }

    /// The ADC resolution a header implies when it gives none.
    pub fn default_resolution(self) -> u32 {
        match self {
            Self::Format80 => 8,
            Self::Format212 => 12,
            _ => 16,
        }
    }

    /// The smallest and largest sample the format stores; the smallest marks an invalid sample.
    pub fn range(self) -> (i32, i32) {
        match self {
            Self::Format80 => (-128, 127),
            Self::Format212 => (-2048, 2047),
            _ => (-32768, 32767),
        }
    }
}

/// The record line.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Record name.
    pub record_name: String,
    /// Sampling frequency per signal, in Hz (frames per second; 250 when the header gives none).
    pub sampling_frequency_hz: f64,
    /// Counter frequency, if given (`360/720`).
    pub counter_frequency_hz: Option<f64>,
    /// Base counter value, if given (`360/720(1000)`).
    pub base_counter: Option<f64>,
    /// Samples per signal, if given.
    pub sample_count: Option<usize>,
    /// Base time as written (`hh:mm:ss`), if given.
    pub base_time: Option<String>,
    /// Base date as written (`dd/mm/yyyy`), if given.
    pub base_date: Option<String>,
    /// One entry per signal, in header order.
    pub signals: Vec<SignalSpec>,
    /// Comment lines (without the `#`).
    pub comments: Vec<String>,
}

/// One signal line.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalSpec {
    /// Name of the signal file (`100.dat`); `~` for a null signal.
    pub file_name: String,
    /// Storage format.
    pub format: SignalFormat,
    /// Samples of this signal per frame (1 unless multi-frequency).
    pub samples_per_frame: usize,
    /// Skew in samples: this signal's sample `t` is stored in frame `t + skew`.
    pub skew: usize,
    /// Bytes to skip at the start of the signal file.
    pub byte_offset: usize,
    /// ADC units per physical unit (200 when the header gives 0 or nothing).
    pub gain: f64,
    /// Sample value of physical zero (the ADC zero when not given).
    pub baseline: i32,
    /// Physical units (`mV` when not given).
    pub units: String,
    /// ADC resolution in bits.
    pub adc_resolution: u32,
    /// ADC zero.
    pub adc_zero: i32,
    /// First sample value, if given.
    pub initial_value: Option<i32>,
    /// 16-bit checksum of all samples, if given.
    pub checksum: Option<i32>,
    /// Block size, if given.
    pub block_size: Option<usize>,
    /// Description (lead name), the rest of the line.
    pub description: String,
}

impl SignalSpec {
    /// Physical value of a stored sample.
    pub fn to_physical(&self, adc: i32) -> f64 {
        f64::from(adc - self.baseline) / self.gain
    }
}

/// Default sampling frequency when the header gives none (as in the WFDB library).
const DEFAULT_FREQUENCY: f64 = 250.0;
/// Default gain when the header gives none or 0 (as in the WFDB library).
pub const DEFAULT_GAIN: f64 = 200.0;

impl Header {
    /// Parses a header's text.
    ///
    /// # Errors
    /// [`WfdbError::Header`] naming the line and what is wrong.
    pub fn parse(text: &str) -> Result<Self, WfdbError> {
        let mut comments = Vec::new();
        let mut lines = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim_start_matches('\u{feff}').trim();
            if let Some(comment) = line.strip_prefix('#') {
                comments.push(comment.trim().to_owned());
            } else if !line.is_empty() {
                lines.push((index + 1, line));
            }
        }
        let Some(&(record_line_no, record_line)) = lines.first() else {
            return Err(header_error(1, "no record line"));
        };
        let mut header = parse_record_line(record_line_no, record_line)?;
        let (nsig, _) = count_signals(record_line_no, record_line)?;
        for k in 0..nsig {
            let Some(&(line_no, line)) = lines.get(1 + k) else {
                return Err(header_error(
                    record_line_no,
                    &format!("{nsig} signals announced, {k} signal lines found"),
                ));
            };
            header.signals.push(parse_signal_line(line_no, line)?);
        }
        header.comments = comments;
        Ok(header)
    }

    /// The signal file holding signal `lead`.
    pub fn signal_file(&self, lead: usize) -> Option<&str> {
        self.signals.get(lead).map(|s| s.file_name.as_str())
    }

    /// The distinct signal file names, in header order (`X.hea` usually names `X.dat`).
    pub fn signal_files(&self) -> Vec<&str> {
        let mut files: Vec<&str> = Vec::new();
        for s in &self.signals {
            if !files.contains(&s.file_name.as_str()) {
                files.push(&s.file_name);
            }
        }
        files
    }
}

fn header_error(line: usize, message: &str) -> WfdbError {
    WfdbError::Header {
        line,
        message: message.to_owned(),
    }
}

/// `NAME[/SEGMENTS] NSIG`: the number of signals, refusing multi-segment records.
fn count_signals(line_no: usize, line: &str) -> Result<(usize, ()), WfdbError> {
    let mut fields = line.split_whitespace();
    let name = fields.next().unwrap_or_default();
    if name.contains('/') {
        return Err(WfdbError::Unsupported(
            "multi-segment records are not supported".to_owned(),
        ));
    }
    let nsig = fields
        .next()
        .ok_or_else(|| header_error(line_no, "the number of signals is missing"))?;
    let nsig: usize = nsig
        .parse()
        .map_err(|_| header_error(line_no, &format!("bad number of signals {nsig:?}")))?;
    if nsig > 4096 {
        return Err(header_error(line_no, "too many signals"));
    }
    Ok((nsig, ()))
}

fn parse_record_line(line_no: usize, line: &str) -> Result<Header, WfdbError> {
    count_signals(line_no, line)?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let record_name = fields[0].to_owned();
    let mut header = Header {
        record_name,
        sampling_frequency_hz: DEFAULT_FREQUENCY,
        counter_frequency_hz: None,
        base_counter: None,
        sample_count: None,
        base_time: None,
        base_date: None,
        signals: Vec::new(),
        comments: Vec::new(),
    };
    if let Some(freq) = fields.get(2) {
        // FREQ[/COUNTER[(BASE)]]
        let (freq_part, counter_part) = match freq.split_once('/') {
            Some((f, c)) => (f, Some(c)),
            None => (*freq, None),
        };
        let frequency = parse_f64(freq_part)
            .filter(|f| *f > 0.0)
            .ok_or_else(|| header_error(line_no, &format!("bad sampling frequency {freq:?}")))?;
        header.sampling_frequency_hz = frequency;
        if let Some(counter) = counter_part {
            let (value, base) = split_parenthesised(counter)
                .ok_or_else(|| header_error(line_no, &format!("bad counter {counter:?}")))?;
            header.counter_frequency_hz = Some(
                parse_f64(value)
                    .ok_or_else(|| header_error(line_no, &format!("bad counter {counter:?}")))?,
            );
            if let Some(base) = base {
                header.base_counter = Some(parse_f64(base).ok_or_else(|| {
                    header_error(line_no, &format!("bad base counter {counter:?}"))
                })?);
            }
        }
    }
    if let Some(count) = fields.get(3) {
        header.sample_count = Some(
            count
                .parse()
                .map_err(|_| header_error(line_no, &format!("bad number of samples {count:?}")))?,
        );
    }
    header.base_time = fields.get(4).map(|s| (*s).to_owned());
    header.base_date = fields.get(5).map(|s| (*s).to_owned());
    Ok(header)
}

/// `VALUE(INNER)` → (`VALUE`, Some(`INNER`)); `VALUE` → (`VALUE`, None).
fn split_parenthesised(text: &str) -> Option<(&str, Option<&str>)> {
    match text.split_once('(') {
        None => Some((text, None)),
        Some((value, rest)) => {
            let inner = rest.strip_suffix(')')?;
            Some((value, Some(inner)))
        }
    }
}

fn parse_f64(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_i32(text: &str) -> Option<i32> {
    text.parse::<i32>().ok()
}

/// `FILE FORMAT[xSPF][:SKEW][+OFFSET] [GAIN[(BASELINE)][/UNITS] [RES [ZERO [INIT [CHECKSUM
/// [BLOCKSIZE [DESCRIPTION]]]]]]]`
fn parse_signal_line(line_no: usize, line: &str) -> Result<SignalSpec, WfdbError> {
    let bad = |what: &str, value: &str| header_error(line_no, &format!("bad {what} {value:?}"));
    // Split off the first 8 fields; the description is the rest of the line, spaces kept.
    let mut rest = line;
    let mut fields: Vec<&str> = Vec::new();
    while fields.len() < 8 {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    let description = rest.trim().to_owned();
    let file_name = fields[0].to_owned();
    let format_field = fields
        .get(1)
        .ok_or_else(|| header_error(line_no, "the signal format is missing"))?;

    // FORMAT[xSPF][:SKEW][+OFFSET]
    let (format_and_skew, byte_offset) = match format_field.split_once('+') {
        Some((f, o)) => (f, o.parse::<usize>().map_err(|_| bad("byte offset", o))?),
        None => (*format_field, 0),
    };
    let (format_and_spf, skew) = match format_and_skew.split_once(':') {
        Some((f, s)) => (f, s.parse::<usize>().map_err(|_| bad("skew", s))?),
        None => (format_and_skew, 0),
    };
    let (code, samples_per_frame) = match format_and_spf.split_once('x') {
        Some((c, n)) => (
            c,
            n.parse::<usize>()
                .map_err(|_| bad("samples per frame", n))?,
        ),
        None => (format_and_spf, 1),
    };
    if samples_per_frame == 0 || samples_per_frame > 1024 {
        return Err(bad("samples per frame", format_and_spf));
    }
    let code_number: u16 = code.parse().map_err(|_| bad("format", code))?;
    let format = SignalFormat::from_code(code_number).ok_or_else(|| {
        WfdbError::Unsupported(format!("signal format {code_number} is not supported"))
    })?;

    // GAIN[(BASELINE)][/UNITS]
    let mut gain = DEFAULT_GAIN;
    let mut baseline = None;
    let mut units = "mV".to_owned();
    if let Some(field) = fields.get(2) {
        let (gain_and_baseline, unit) = match field.split_once('/') {
            Some((g, u)) => (g, Some(u)),
            None => (*field, None),
        };
        let (gain_text, baseline_text) =
            split_parenthesised(gain_and_baseline).ok_or_else(|| bad("gain", field))?;
        let value = parse_f64(gain_text).ok_or_else(|| bad("gain", field))?;
        if value != 0.0 {
            gain = value;
        }
        if let Some(b) = baseline_text {
            baseline = Some(parse_i32(b).ok_or_else(|| bad("baseline", field))?);
        }
        if let Some(u) = unit {
            units = u.to_owned();
        }
    }
    let adc_resolution = match fields.get(3) {
        Some(r) => r.parse::<u32>().map_err(|_| bad("ADC resolution", r))?,
        None => format.default_resolution(),
    };
    let adc_resolution = if adc_resolution == 0 {
        format.default_resolution()
    } else {
        adc_resolution
    };
    let adc_zero = match fields.get(4) {
        Some(z) => parse_i32(z).ok_or_else(|| bad("ADC zero", z))?,
        None => 0,
    };
    let initial_value = fields
        .get(5)
        .map(|v| parse_i32(v).ok_or_else(|| bad("initial value", v)))
        .transpose()?;
    let checksum = fields
        .get(6)
        .map(|v| parse_i32(v).ok_or_else(|| bad("checksum", v)))
        .transpose()?;
    let block_size = fields
        .get(7)
        .map(|v| v.parse::<usize>().map_err(|_| bad("block size", v)))
        .transpose()?;
    Ok(SignalSpec {
        file_name,
        format,
        samples_per_frame,
        skew,
        byte_offset,
        gain,
        baseline: baseline.unwrap_or(adc_zero),
        units,
        adc_resolution,
        adc_zero,
        initial_value,
        checksum,
        block_size,
        description,
    })
}
