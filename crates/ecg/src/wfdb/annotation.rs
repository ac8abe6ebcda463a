//! WFDB annotation files in MIT format (`.atr`): 16-bit little-endian words, each a 6-bit code
//! and a 10-bit time increment or value, with the pseudo-codes SKIP (59, a 32-bit time jump),
//! NUM (60), SUB (61), CHN (62) and AUX (63, a byte string) modifying the annotation around them.

use super::WfdbError;

const SKIP: u16 = 59;
const NUM: u16 = 60;
const SUB: u16 = 61;
const CHN: u16 = 62;
const AUX: u16 = 63;

/// An annotation code (1–49 in the MIT standard), with its mnemonic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnnotationCode(pub u8);

impl AnnotationCode {
    /// Normal beat.
    pub const NORMAL: Self = Self(1);
    /// Premature ventricular contraction.
    pub const PVC: Self = Self(5);
    /// Atrial premature beat.
    pub const APC: Self = Self(8);
    /// Rhythm change (the rhythm is in the aux string, e.g. `(AFIB`).
    pub const RHYTHM: Self = Self(28);

    /// The standard mnemonic (`N`, `V`, `+`, ...), `?` for unknown codes.
    pub fn symbol(self) -> &'static str {
        const SYMBOLS: [&str; 42] = [
            " ", "N", "L", "R", "a", "V", "F", "J", "A", "S", "E", "j", "/", "Q", "~", "?", "|",
            "?", "s", "T", "*", "D", "\"", "=", "p", "B", "^", "t", "+", "u", "?", "!", "[", "]",
            "e", "n", "@", "x", "f", "(", ")", "r",
        ];
        SYMBOLS.get(usize::from(self.0)).copied().unwrap_or("?")
    }

    /// Whether this code is a beat for QRS detection scoring (AAMI EC57 / ANSI convention):
    /// N, L, R, e, j, A, a, J, S, V, E, F, Q, / and f.
    pub fn is_beat(self) -> bool {
        matches!(self.0, 1..=13 | 34 | 38)
    }
}

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Sample index (in frames at the record's sampling frequency).
    pub sample: u64,
    /// Annotation code.
    pub code: AnnotationCode,
    /// Subtype.
    pub subtype: i16,
    /// Signal number the annotation refers to.
    pub channel: u16,
    /// Annotator-defined number.
    pub num: i16,
    /// Auxiliary text (e.g. the rhythm of a rhythm change).
    pub aux: Option<String>,
}

/// Reads an MIT-format annotation file. Reading stops at the end marker or the end of the bytes.
///
/// # Errors
/// [`WfdbError::Annotation`] for a truncated SKIP or AUX field or a time going negative.
pub fn read_annotations(bytes: &[u8]) -> Result<Vec<Annotation>, WfdbError> {
    let mut out: Vec<Annotation> = Vec::new();
    let mut time: i64 = 0;
    let mut channel = 0u16;
    let mut num = 0i16;
    let mut i = 0;
    let word_at = |i: usize| -> Option<u16> {
        let b = bytes.get(i..i + 2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    };
    while let Some(word) = word_at(i) {
        i += 2;
        let code = word >> 10;
        let value = word & 0x03ff;
        match code {
            0 if value == 0 => break,
            SKIP => {
                let (Some(high), Some(low)) = (word_at(i), word_at(i + 2)) else {
                    return Err(WfdbError::Annotation("truncated SKIP".to_owned()));
                };
                i += 4;
                let jump = ((u32::from(high) << 16) | u32::from(low)) as i32;
                time += i64::from(jump);
            }
            NUM => {
                num = sign_extend_10(value);
                if let Some(last) = out.last_mut() {
                    last.num = num;
                }
            }
            SUB => {
                if let Some(last) = out.last_mut() {
                    last.subtype = sign_extend_10(value);
                }
            }
            CHN => {
                channel = value;
                if let Some(last) = out.last_mut() {
                    last.channel = channel;
                }
            }
            AUX => {
                let len = usize::from(value);
                let Some(text) = bytes.get(i..i + len) else {
                    return Err(WfdbError::Annotation("truncated AUX".to_owned()));
                };
                i += len + (len % 2);
                let text = String::from_utf8_lossy(text)
                    .trim_end_matches('\0')
                    .to_owned();
                if let Some(last) = out.last_mut() {
                    last.aux = Some(text);
                }
            }
            _ => {
                time += i64::from(value);
                let sample = u64::try_from(time)
                    .map_err(|_| WfdbError::Annotation("negative annotation time".to_owned()))?;
                out.push(Annotation {
                    sample,
                    code: AnnotationCode(code as u8),
                    subtype: 0,
                    channel,
                    num,
                    aux: None,
                });
            }
        }
    }
    Ok(out)
}

fn sign_extend_10(value: u16) -> i16 {
    let v = value as i16;
    if v >= 512 { v - 1024 } else { v }
}

/// Writes annotations (sorted by sample) in MIT format, with the end marker.
pub fn write_annotations(annotations: &[Annotation]) -> Vec<u8> {
    let mut out = Vec::with_capacity(annotations.len() * 2 + 2);
    let push = |out: &mut Vec<u8>, code: u16, value: u16| {
        out.extend_from_slice(&((code << 10) | (value & 0x03ff)).to_le_bytes());
    };
    let mut time = 0u64;
    let mut channel = 0u16;
    let mut num = 0i16;
    for a in annotations {
        let delta = a.sample.saturating_sub(time);
        let value = if delta > 1023 {
            push(&mut out, SKIP, 0);
            let jump = delta.min(i32::MAX as u64) as u32;
            out.extend_from_slice(&((jump >> 16) as u16).to_le_bytes());
            out.extend_from_slice(&((jump & 0xffff) as u16).to_le_bytes());
            time += u64::from(jump);
            a.sample.saturating_sub(time).min(1023) as u16
        } else {
            delta as u16
        };
        time += u64::from(value);
        push(&mut out, u16::from(a.code.0 & 0x3f), value);
        if a.subtype != 0 {
            push(&mut out, SUB, (a.subtype as u16) & 0x03ff);
        }
        if a.channel != channel {
            channel = a.channel;
            push(&mut out, CHN, channel & 0x03ff);
        }
        if a.num != num {
            num = a.num;
            push(&mut out, NUM, (num as u16) & 0x03ff);
        }
        if let Some(aux) = &a.aux {
            let bytes = &aux.as_bytes()[..aux.len().min(255)];
            push(&mut out, AUX, bytes.len() as u16);
            out.extend_from_slice(bytes);
            if bytes.len() % 2 == 1 {
                out.push(0);
            }
        }
    }
    out.extend_from_slice(&[0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(sample: u64, code: AnnotationCode) -> Annotation {
        Annotation {
            sample,
            code,
            subtype: 0,
            channel: 0,
            num: 0,
            aux: None,
        }
    }

    #[test]
    fn annotations_round_trip_with_skips_and_modifiers() {
        let mut rhythm = beat(18, AnnotationCode::RHYTHM);
        rhythm.aux = Some("(N".to_owned());
        let mut pvc = beat(5000, AnnotationCode::PVC);
        pvc.channel = 1;
        pvc.num = -3;
        pvc.subtype = 2;
        let annotations = vec![
            rhythm,
            beat(77, AnnotationCode::NORMAL),
            pvc,
            beat(90_000, AnnotationCode::NORMAL),
        ];
        let bytes = write_annotations(&annotations);
        let read = read_annotations(&bytes).expect("valid");
        assert_eq!(read, annotations);
    }

    #[test]
    fn beat_codes_follow_the_aami_convention() {
        let beats: String = (0..50)
            .map(AnnotationCode)
            .filter(|c| c.is_beat())
            .map(AnnotationCode::symbol)
            .collect();
        assert_eq!(beats, "NLRaVFJASEj/Qef");
    }
}
