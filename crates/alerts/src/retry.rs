//! Retries: exponential backoff with jitter, a timeout on every attempt, and
//! the classification every channel shares.
//!
//! Policy: attempt `n` that fails transiently is followed, after
//! `min(base · 2^(n−1), max)` with "equal jitter" (uniform in the upper half,
//! so many failing deliveries spread out yet never retry at once), by
//! attempt `n + 1`, up to [`RetryPolicy::attempts`]. A `Retry-After` hint
//! from the target lengthens the pause, capped at [`RetryPolicy::max_delay`].
//! Every attempt is bounded by [`RetryPolicy::attempt_timeout`], so a target
//! that hangs costs at most `attempts × (timeout + max delay)` and never
//! blocks anything else. A permanent failure stops at once.
//!
//! [`run`] and [`Outcome`] are public so that channels in other crates (SES
//! and SNS in `westtek-alerts-aws`) retry exactly as webhooks and SMTP do.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// How a notifier retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1). Default 5.
    pub attempts: u32,
    /// The pause after the first failure, before jitter. Default 1 s.
    pub base_delay: Duration,
    /// The longest pause, also the cap on a `Retry-After` hint. Default 60 s.
    pub max_delay: Duration,
    /// The longest one attempt may take, connecting included. Default 10 s.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `failed` (1-based) before jitter:
    /// `base · 2^(failed−1)`, at most [`Self::max_delay`].
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failed.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The pause actually taken after failed attempt `failed`: the backoff
    /// with equal jitter (uniform between half of it and all of it), raised
    /// to the target's `retry_after` hint capped at [`Self::max_delay`].
    pub fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        let full = self.backoff(failed);
        let half = full / 2;
        let span = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        let jittered = half + Duration::from_nanos(rand::thread_rng().gen_range(0..=span));
        match retry_after {
            Some(hint) => jittered.max(hint.min(self.max_delay)),
            None => jittered,
        }
    }

    fn attempts_in_all(&self) -> u32 {
        self.attempts.max(1)
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Outcome {
    /// Done; the target's status code, if it gave one.
    Delivered {
        /// The HTTP status or SMTP reply code of the answer.
        status: Option<u16>,
    },
    /// Failed, may succeed later.
    Retry {
        /// Why, in words (it becomes the dead letter's `last_error`).
        error: String,
        /// The target's status code, if it answered.
        status: Option<u16>,
        /// The target's hint on when to try again.
        retry_after: Option<Duration>,
    },
    /// Failed, will fail again: do not retry.
    Permanent {
        /// Why, in words.
        error: String,
        /// The target's status code, if it answered.
        status: Option<u16>,
    },
}

/// A delivery that succeeded.
#[derive(Debug)]
pub struct Success {
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// The successful answer's status code, if any.
    pub status: Option<u16>,
}

/// A delivery given up on.
#[derive(Debug)]
pub struct Failure {
    /// Attempts made.
    pub attempts: u32,
    /// Why the last one failed (or that it was abandoned at shutdown).
    pub error: String,
    /// The last status code the target gave, if any.
    pub status: Option<u16>,
}

/// Runs `attempt(n)` for n = 1, 2, … per `policy` until one is delivered,
/// one fails permanently, the attempts run out, or `cancel` fires (which
/// abandons the delivery at once, even mid-attempt). `target` names the
/// target in logs.
///
/// # Errors
/// The [`Failure`] (attempts made, last error and status) when the delivery
/// is given up on.
pub async fn run<F, Fut>(
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    target: &str,
    mut attempt: F,
) -> Result<Success, Failure>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let total = policy.attempts_in_all();
    let mut last_error = String::from("no attempt made");
    let mut last_status = None;
    let abandoned = |attempts: u32, last: &str, status: Option<u16>| Failure {
        attempts,
        error: format!("abandoned at shutdown (last error: {last})"),
        status,
    };
    for n in 1..=total {
        if cancel.is_cancelled() {
            return Err(abandoned(n - 1, &last_error, last_status));
        }
        let timed = tokio::time::timeout(policy.attempt_timeout, attempt(n));
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(abandoned(n, &last_error, last_status)),
            r = timed => r,
        };
        let retry_after = match outcome {
            Ok(Outcome::Delivered { status }) => {
                return Ok(Success {
                    attempts: n,
                    status,
                })
            }
            Ok(Outcome::Permanent { error, status }) => {
                tracing::debug!(target_id = target, attempt = n, %error, "permanent failure");
                return Err(Failure {
                    attempts: n,
                    error,
                    status,
                });
            }
            Ok(Outcome::Retry {
                error,
                status,
                retry_after,
            }) => {
                last_error = error;
                last_status = status;
                retry_after
            }
            Err(_) => {
                last_error = format!("timed out after {} ms", policy.attempt_timeout.as_millis());
                last_status = None;
                None
            }
        };
        if n == total {
            break;
        }
        let pause = policy.delay(n, retry_after);
        tracing::debug!(
            target_id = target,
            attempt = n,
            error = %last_error,
            retry_in_ms = pause.as_millis() as u64,
            "attempt failed, retrying"
        );
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(abandoned(n, &last_error, last_status)),
            () = tokio::time::sleep(pause) => {}
        }
    }
    Err(Failure {
        attempts: total,
        error: last_error,
        status: last_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            base_delay: ms(100),
            max_delay: ms(350),
            attempt_timeout: ms(50),
        }
    }

    #[test]
    fn the_default_policy_is_five_attempts_from_one_second_to_a_minute() {
        let p = RetryPolicy::default();
        assert_eq!(p.attempts, 5);
        assert_eq!(p.base_delay, Duration::from_secs(1));
        assert_eq!(p.max_delay, Duration::from_secs(60));
        assert_eq!(p.attempt_timeout, Duration::from_secs(10));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = policy();
        assert_eq!(p.backoff(1), ms(100));
        assert_eq!(p.backoff(2), ms(200));
        assert_eq!(p.backoff(3), ms(350));
        assert_eq!(p.backoff(60), ms(350));
    }

    #[test]
    fn jitter_stays_within_the_upper_half_of_the_backoff() {
        let p = policy();
        for _ in 0..200 {
            let d = p.delay(2, None);
            assert!(d >= ms(100) && d <= ms(200), "{d:?}");
        }
    }

    #[test]
    fn a_retry_after_hint_lengthens_the_pause_but_is_capped() {
        let p = policy();
        assert_eq!(p.delay(1, Some(ms(300))), ms(300));
        assert_eq!(p.delay(1, Some(Duration::from_secs(3600))), ms(350));
        assert!(p.delay(2, Some(ms(1))) >= ms(100));
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_until_delivered() {
        let mut calls = 0;
        let r = run(&policy(), &CancellationToken::new(), "t", |n| {
            calls += 1;
            async move {
                if n < 3 {
                    Outcome::Retry {
                        error: "503".into(),
                        status: Some(503),
                        retry_after: None,
                    }
                } else {
                    Outcome::Delivered { status: Some(200) }
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(r.attempts, 3);
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_not_retried() {
        let f = run(&policy(), &CancellationToken::new(), "t", |_| async {
            Outcome::Permanent {
                error: "400".into(),
                status: Some(400),
            }
        })
        .await
        .unwrap_err();
        assert_eq!(f.attempts, 1);
        assert_eq!(f.status, Some(400));
    }

    #[tokio::test]
    async fn a_hanging_attempt_times_out_and_counts() {
        let f = run(&policy(), &CancellationToken::new(), "t", |_| {
            std::future::pending::<Outcome>()
        })
        .await
        .unwrap_err();
        assert_eq!(f.attempts, 4);
        assert!(f.error.contains("timed out"), "{}", f.error);
    }

    #[tokio::test]
    async fn cancelling_abandons_at_once() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let f = run(&policy(), &cancel, "t", |_| {
            std::future::pending::<Outcome>()
        })
        .await
        .unwrap_err();
        assert!(f.error.starts_with("abandoned at shutdown"), "{}", f.error);
    }
}
