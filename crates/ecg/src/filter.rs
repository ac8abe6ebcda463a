//! Digital filters designed from the sampling rate: Butterworth biquads (bilinear transform),
//! applied forward and backward so that they add no delay.

use std::f64::consts::PI;

/// One second-order section, direct form II transposed.
#[derive(Debug, Clone, Copy)]
struct Biquad {
    b0: f64,
    b1: f64,
    b2: f64,
    a1: f64,
    a2: f64,
}

impl Biquad {
    /// Second-order Butterworth low-pass at `cutoff_hz`.
    fn low_pass(cutoff_hz: f64, rate_hz: f64) -> Self {
        let k = (PI * cutoff_hz / rate_hz).tan();
        let q = std::f64::consts::FRAC_1_SQRT_2;
        let norm = 1.0 / (1.0 + k / q + k * k);
        let b0 = k * k * norm;
        Self {
            b0,
            b1: 2.0 * b0,
            b2: b0,
            a1: 2.0 * (k * k - 1.0) * norm,
            a2: (1.0 - k / q + k * k) * norm,
        }
    }

    /// Second-order Butterworth high-pass at `cutoff_hz`.
    fn high_pass(cutoff_hz: f64, rate_hz: f64) -> Self {
        let k = (PI * cutoff_hz / rate_hz).tan();
        let q = std::f64::consts::FRAC_1_SQRT_2;
        let norm = 1.0 / (1.0 + k / q + k * k);
        Self {
            b0: norm,
            b1: -2.0 * norm,
            b2: norm,
            a1: 2.0 * (k * k - 1.0) * norm,
            a2: (1.0 - k / q + k * k) * norm,
        }
    }

    /// DC gain.
    fn dc_gain(&self) -> f64 {
        (self.b0 + self.b1 + self.b2) / (1.0 + self.a1 + self.a2)
    }

    /// A filter state at the steady state for a constant input `x0`, so that a DC offset does
    /// not ring at the start.
    fn settled(self, x0: f64) -> Section {
        let y0 = self.dc_gain() * x0;
        Section {
            q: self,
            z1: y0 - self.b0 * x0,
            z2: self.b2 * x0 - self.a2 * y0,
        }
    }
}

/// A biquad with its state (direct form II transposed).
#[derive(Debug, Clone, Copy)]
struct Section {
    q: Biquad,
    z1: f64,
    z2: f64,
}

impl Section {
    #[inline]
    fn step(&mut self, x: f64) -> f64 {
        let q = &self.q;
        let y = q.b0 * x + self.z1;
        self.z1 = q.b1 * x - q.a1 * y + self.z2;
        self.z2 = q.b2 * x - q.a2 * y;
        y
    }
}

/// A high-pass then a low-pass (either may be absent).
#[derive(Debug, Clone, Copy)]
struct BandPass {
    high: Option<Biquad>,
    low: Option<Biquad>,
}

impl BandPass {
    fn new(rate_hz: f64, low_hz: f64, high_hz: f64) -> Self {
        Self {
            high: (low_hz > 0.0).then(|| Biquad::high_pass(low_hz, rate_hz)),
            low: (high_hz < 0.45 * rate_hz).then(|| Biquad::low_pass(high_hz, rate_hz)),
        }
    }

    /// The two sections settled for a constant input `x0` (an identity section if absent).
    fn settled(self, x0: f64) -> (Section, Section) {
        let identity = Biquad {
            b0: 1.0,
            b1: 0.0,
            b2: 0.0,
            a1: 0.0,
            a2: 0.0,
        };
        let high = self.high.unwrap_or(identity);
        let low = self.low.unwrap_or(identity);
        (high.settled(x0), low.settled(high.dc_gain() * x0))
    }
}

/// Two zero-phase band-passes of one signal, computed together: each sample runs through the
/// four independent sections in one loop (forward, then backward), which lets the processor
/// overlap them. Used for the detection and the wide band at once.
pub(crate) fn band_pass_pair(
    signal: &[f64],
    rate_hz: f64,
    first: (f64, f64),
    second: (f64, f64),
) -> (Vec<f64>, Vec<f64>) {
    let n = signal.len();
    let (Some(&x0), Some(_)) = (signal.first(), signal.last()) else {
        return (Vec::new(), Vec::new());
    };
    let a = BandPass::new(rate_hz, first.0, first.1);
    let b = BandPass::new(rate_hz, second.0, second.1);
    let mut out_a = vec![0.0; n];
    let mut out_b = vec![0.0; n];
    let (mut a1, mut a2) = a.settled(x0);
    let (mut b1, mut b2) = b.settled(x0);
    for ((x, ya), yb) in signal.iter().zip(&mut out_a).zip(&mut out_b) {
        *ya = a2.step(a1.step(*x));
        *yb = b2.step(b1.step(*x));
    }
    let (mut a1, mut a2) = a.settled(out_a[n - 1]);
    let (mut b1, mut b2) = b.settled(out_b[n - 1]);
    for (ya, yb) in out_a.iter_mut().rev().zip(out_b.iter_mut().rev()) {
        *ya = a2.step(a1.step(*ya));
        *yb = b2.step(b1.step(*yb));
    }
    (out_a, out_b)
}

/// Zero-phase band-pass: a Butterworth high-pass at `low_hz` and low-pass at `high_hz`, each run
/// forward and backward. A cut-off at or above the Nyquist frequency is left out.
#[cfg(test)]
pub(crate) fn band_pass(signal: &[f64], rate_hz: f64, low_hz: f64, high_hz: f64) -> Vec<f64> {
    band_pass_pair(signal, rate_hz, (low_hz, high_hz), (low_hz, high_hz)).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: f64, secs: f64) -> Vec<f64> {
        let n = (rate * secs) as usize;
        (0..n)
            .map(|i| (2.0 * PI * freq * i as f64 / rate).sin())
            .collect()
    }

    fn rms(x: &[f64]) -> f64 {
        (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn band_pass_keeps_the_pass_band_and_removes_the_rest_at_any_rate() {
        for rate in [100.0, 360.0, 1000.0] {
            let mid = band_pass(&sine(10.0, rate, 10.0), rate, 5.0, 15.0);
            let low = band_pass(&sine(0.3, rate, 10.0), rate, 5.0, 15.0);
            let n = mid.len();
            assert!(rms(&mid[n / 4..3 * n / 4]) > 0.5, "rate {rate}");
            assert!(rms(&low[n / 4..3 * n / 4]) < 0.01, "rate {rate}");
        }
    }
}
