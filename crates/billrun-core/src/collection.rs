//! Collection rules, pure: decline classes, the retry schedule, what to do with an invoice now,
//! how credit and referral rewards apply.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::money::div_round_half_away;
use super::period::Period;

/// Stripe will not charge less than €0.50.
pub const STRIPE_MINIMUM_MINOR: i64 = 50;
/// A referrer earns 20% of what an invitee pays (excluding VAT)…
pub const REFERRAL_PERCENT: i64 = 20;
/// …for the invitee's first 12 months.
pub const REFERRAL_MONTHS: u32 = 12;

/// How a failed charge is followed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineClass {
    /// May succeed later (insufficient funds, a generic decline, a processing error): retried on
    /// the schedule.
    Soft,
    /// Will not succeed with this payment method (expired, lost, stolen, wrong number): not
    /// retried until the payment method changes; the account is told why.
    Hard,
    /// The bank wants the customer to authenticate (3-D Secure): not retried off-session until
    /// the payment method changes; the account is asked to act.
    AuthenticationRequired,
}

/// Decline codes that will not succeed again with the same payment method.
const HARD_DECLINES: &[&str] = &[
    "expired_card",
    "lost_card",
    "stolen_card",
    "incorrect_number",
    "invalid_number",
    "incorrect_cvc",
    "invalid_cvc",
    "invalid_expiry_month",
    "invalid_expiry_year",
    "incorrect_zip",
    "card_not_supported",
    "currency_not_supported",
    "pickup_card",
    "restricted_card",
    "fraudulent",
    "merchant_blacklist",
    "security_violation",
    "service_not_allowed",
    "transaction_not_allowed",
    "not_permitted",
    "revocation_of_authorization",
    "revocation_of_all_authorizations",
    "stop_payment_order",
    "new_account_information_available",
    "invalid_account",
    "account_closed",
    "bank_account_restricted",
    "debit_not_authorized",
    "no_payment_method",
    // billrun's code for a payment method Stripe no longer has (`resource_missing` on it).
    "payment_method_missing",
];

/// Classifies a failure by Stripe's `decline_code` (preferred) or `code`. Anything not known to
/// be hard is soft: the schedule retries it.
pub fn classify_decline(code: Option<&str>, decline_code: Option<&str>) -> DeclineClass {
    let codes = [decline_code, code];
    if codes
        .iter()
        .flatten()
        .any(|c| *c == "authentication_required")
    {
        return DeclineClass::AuthenticationRequired;
    }
    let main = decline_code
        .filter(|d| !d.is_empty() && *d != "generic_decline")
        .or(code);
    match main {
        Some(c) if HARD_DECLINES.contains(&c) => DeclineClass::Hard,
        _ => DeclineClass::Soft,
    }
}

/// The retry schedule: days after each failure (default 3, 5, 7: four attempts in all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    pub offsets_days: Vec<u32>,
}

impl RetrySchedule {
    /// When to try again after the `failures`-th scheduled failure, or `None` when the last
    /// retry has failed.
    pub fn next_after(&self, failures: u32, failed_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let i = usize::try_from(failures).ok()?.checked_sub(1)?;
        self.offsets_days
            .get(i)
            .map(|d| failed_at + Duration::days(i64::from(*d)))
    }

    pub fn attempts_in_all(&self) -> usize {
        self.offsets_days.len() + 1
    }
}

/// Whether an account may pay by SEPA debit. The platform's documentation (Billing, current
/// version): "SEPA payment: for customers located in the European Union". (SEPA's own zone is
/// wider; the platform promises the EU, and billrun keeps to what it promises.)
pub fn sepa_debit_allowed(country: &str) -> Result<(), String> {
    if super::countries::is_eu_member(country) {
        Ok(())
    } else {
        Err(format!(
            "SEPA debit is offered to customers located in the European Union; the account is located in {country}"
        ))
    }
}

/// Why an attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The first collection of a new invoice.
    Initial,
    /// A retry on the schedule.
    Retry,
    /// The payment method changed after a failure: charged at once, off the schedule.
    PaymentMethodChanged,
    /// Credit was bought after a failure: applied at once, off the schedule.
    CreditAdded,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Initial => "initial",
            Trigger::Retry => "retry",
            Trigger::PaymentMethodChanged => "payment_method_changed",
            Trigger::CreditAdded => "credit_added",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        match s {
            "initial" => Some(Trigger::Initial),
            "retry" => Some(Trigger::Retry),
            "payment_method_changed" => Some(Trigger::PaymentMethodChanged),
            "credit_added" => Some(Trigger::CreditAdded),
            _ => None,
        }
    }

    /// Whether a failure of this attempt moves the schedule on.
    pub fn is_scheduled(self) -> bool {
        match self {
            Trigger::Initial | Trigger::Retry => true,
            Trigger::PaymentMethodChanged | Trigger::CreditAdded => false,
        }
    }
}

/// What is known of an attempt's outcome. Matched exhaustively: `Unknown` is a state of its own
/// (the gateway was called and did not answer, or the run stopped before it did), never
/// guessed to be a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded,
    /// Accepted, settling later (a SEPA debit).
    Processing,
    Failed,
    /// Sent (or about to be) with no answer yet: resent under the same idempotency key.
    Unknown,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Processing => "processing",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptOutcome> {
        match s {
            "succeeded" => Some(AttemptOutcome::Succeeded),
            "processing" => Some(AttemptOutcome::Processing),
            "failed" => Some(AttemptOutcome::Failed),
            "unknown" => Some(AttemptOutcome::Unknown),
            _ => None,
        }
    }

    /// Whether the attempt is over: nothing more will be learnt of it.
    pub fn is_settled(self) -> bool {
        match self {
            AttemptOutcome::Succeeded | AttemptOutcome::Failed => true,
            AttemptOutcome::Processing | AttemptOutcome::Unknown => false,
        }
    }
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the collect job knows of an invoice when it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceCollectionState {
    /// `open`, `unpaid` or `pending` (others are never collected).
    pub status: super::document::InvoiceStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub collection_exhausted: bool,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The payment-method version the last attempt used (`None`: it had none).
    pub last_attempt_pm_version: Option<i64>,
    /// The payment-method version a hard decline or authentication request blocked.
    pub blocked_pm_version: Option<i64>,
    /// An attempt whose outcome is not known (the gateway never answered conclusively).
    pub unknown_attempt: bool,
    /// An attempt in flight (SEPA processing).
    pub processing_attempt: bool,
}

/// What the account offers for payment now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPaymentState {
    pub credit_balance: i64,
    /// The account's payment method now (its version, bumped at each change).
    pub pm_version: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Send the unknown attempt again with its idempotency key: settles it, never charges twice.
    SettleUnknown,
    /// Ask the gateway where an in-flight payment stands.
    PollProcessing,
    /// Collect now (credit first, then the payment method).
    Collect(Trigger),
    /// Nothing to do before the next scheduled retry.
    WaitUntilRetry,
    /// Hard-declined: waiting for a new payment method (a scheduled retry passes without a
    /// charge, and still counts towards suspension).
    BlockedUntilPaymentMethodChanges,
    /// The last scheduled retry failed: the lifecycle takes over.
    Exhausted,
}

/// Decides what to do with an invoice at `now`.
pub fn decide(
    inv: &InvoiceCollectionState,
    acc: &AccountPaymentState,
    now: DateTime<Utc>,
) -> Decision {
    if inv.unknown_attempt {
        return Decision::SettleUnknown;
    }
    if inv.processing_attempt {
        return Decision::PollProcessing;
    }
    if inv.status == super::document::InvoiceStatus::Open && inv.last_attempt_at.is_none() {
        return Decision::Collect(Trigger::Initial);
    }
    // Something changed since the last attempt: try at once, off the schedule. "Changed" is a
    // fact about the payment method and the ledger, never a comparison of two clocks (an
    // operator replaying a date with `--now` would see every run as "changed"):
    // - a payment method other than the one the last attempt used;
    // - credit on the account: every attempt applies all the credit it can before charging,
    //   so an unpaid invoice after an attempt means the balance was spent, and credit now is
    //   credit bought (or given back) since.
    let pm_changed = acc.pm_version.is_some() && acc.pm_version != inv.last_attempt_pm_version;
    let blocked = inv.blocked_pm_version.is_some() && inv.blocked_pm_version == acc.pm_version;
    if pm_changed && !blocked {
        return Decision::Collect(Trigger::PaymentMethodChanged);
    }
    if acc.credit_balance > 0 {
        return Decision::Collect(Trigger::CreditAdded);
    }
    if inv.collection_exhausted {
        return Decision::Exhausted;
    }
    match inv.next_attempt_at {
        Some(t) if t <= now => {
            if blocked {
                Decision::BlockedUntilPaymentMethodChanges
            } else {
                Decision::Collect(Trigger::Retry)
            }
        }
        Some(_) => Decision::WaitUntilRetry,
        None => Decision::Exhausted,
    }
}

/// How an amount due is met: credit first, then a charge, unless what is left is too small to
/// charge (Stripe's €0.50 minimum). Then it moves to the account's next invoice, unless the
/// account is closing (a deletion was requested): there is no next invoice, and Stripe cannot
/// charge it alone, so it is waived. The rule, as documented in the README: the final invoice
/// of a closing account already carries every earlier small balance (brought forward); what
/// is still under €0.50 after credit is written off, recorded on the invoice and the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CollectionPlan {
    pub credit_to_apply: i64,
    pub charge: i64,
    pub carry_forward: i64,
    pub waive: i64,
}

pub fn plan_collection(amount_due: i64, credit_balance: i64, closing: bool) -> CollectionPlan {
    let credit_to_apply = credit_balance.clamp(0, amount_due.max(0));
    // 0 <= credit_to_apply <= max(amount_due, 0): the difference cannot overflow.
    let rest = amount_due - credit_to_apply;
    let small = rest > 0 && rest < STRIPE_MINIMUM_MINOR;
    CollectionPlan {
        credit_to_apply,
        charge: if small { 0 } else { rest },
        carry_forward: if small && !closing { rest } else { 0 },
        waive: if small && closing { rest } else { 0 },
    }
}

/// Whether an invitee's invoice for `period` earns its referrer a reward: the invitee's first
/// 12 billing months, counting the month it was created in.
pub fn referral_applies(invitee_created_at: DateTime<Utc>, period: Period) -> bool {
    let first = Period::containing(invitee_created_at);
    let mut last = first;
    for _ in 1..REFERRAL_MONTHS {
        last = last.next();
    }
    period >= first && period <= last
}

/// The reward for a paid invoice: 20% of its amount excluding VAT, half away from zero. Exact
/// integer arithmetic: at most 100% of an amount that fits in `i64` fits in `i64`.
pub fn referral_reward(taxable_base_minor: i64) -> i64 {
    const { assert!(REFERRAL_PERCENT <= 100) };
    let exact = i128::from(taxable_base_minor) * i128::from(REFERRAL_PERCENT);
    let reward = div_round_half_away(exact, 100);
    // |reward| <= |taxable_base_minor| (the assertion above): the fallback is never taken.
    i64::try_from(reward).unwrap_or(taxable_base_minor)
}

/// Spreads rewards (id, remaining) over an invoice's subtotal, oldest first; never more than
/// the subtotal. Returns what each reward gives to this invoice.
pub fn allocate_rewards(rewards: &[(i64, i64)], subtotal: i64) -> Vec<(i64, i64)> {
    let mut left = subtotal.max(0);
    let mut out = Vec::new();
    for (id, remaining) in rewards {
        if left == 0 {
            break;
        }
        let used = (*remaining).min(left);
        if used > 0 {
            out.push((*id, used));
            left -= used;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_decline_table() {
        let cases = [
            (
                Some("card_declined"),
                Some("generic_decline"),
                DeclineClass::Soft,
            ),
            (
                Some("card_declined"),
                Some("insufficient_funds"),
                DeclineClass::Soft,
            ),
            (Some("processing_error"), None, DeclineClass::Soft),
            (
                Some("card_declined"),
                Some("do_not_honor"),
                DeclineClass::Soft,
            ),
            (
                Some("card_declined"),
                Some("try_again_later"),
                DeclineClass::Soft,
            ),
            (
                Some("expired_card"),
                Some("expired_card"),
                DeclineClass::Hard,
            ),
            (Some("card_declined"), Some("lost_card"), DeclineClass::Hard),
            (
                Some("card_declined"),
                Some("stolen_card"),
                DeclineClass::Hard,
            ),
            (Some("incorrect_number"), None, DeclineClass::Hard),
            (
                Some("authentication_required"),
                Some("authentication_required"),
                DeclineClass::AuthenticationRequired,
            ),
            (
                Some("card_declined"),
                Some("authentication_required"),
                DeclineClass::AuthenticationRequired,
            ),
            (None, None, DeclineClass::Soft),
            (Some("something_new"), None, DeclineClass::Soft),
        ];
        for (code, decline, want) in cases {
            assert_eq!(
                classify_decline(code, decline),
                want,
                "{code:?}/{decline:?}"
            );
        }
    }

    #[test]
    fn the_schedule_is_3_5_7_days_after_each_failure() {
        let s = RetrySchedule {
            offsets_days: vec![3, 5, 7],
        };
        let d0 = t("2026-11-01T06:00:00Z");
        let d3 = s.next_after(1, d0).unwrap();
        let d8 = s.next_after(2, d3).unwrap();
        let d15 = s.next_after(3, d8).unwrap();
        assert_eq!(
            (d3, d8, d15),
            (
                t("2026-11-04T06:00:00Z"),
                t("2026-11-09T06:00:00Z"),
                t("2026-11-16T06:00:00Z")
            )
        );
        assert_eq!(s.next_after(4, d15), None);
        assert_eq!(s.attempts_in_all(), 4);
    }

    fn inv() -> InvoiceCollectionState {
        InvoiceCollectionState {
            status: crate::document::InvoiceStatus::Unpaid,
            next_attempt_at: Some(t("2026-11-04T06:00:00Z")),
            collection_exhausted: false,
            last_attempt_at: Some(t("2026-11-01T06:00:00Z")),
            last_attempt_pm_version: Some(1),
            blocked_pm_version: None,
            unknown_attempt: false,
            processing_attempt: false,
        }
    }

    fn acc() -> AccountPaymentState {
        AccountPaymentState {
            credit_balance: 0,
            pm_version: Some(1),
        }
    }

    #[test]
    fn decisions() {
        let now = t("2026-11-02T00:00:00Z");
        assert_eq!(decide(&inv(), &acc(), now), Decision::WaitUntilRetry);
        assert_eq!(
            decide(&inv(), &acc(), t("2026-11-04T06:00:00Z")),
            Decision::Collect(Trigger::Retry)
        );
        let new_pm = AccountPaymentState {
            pm_version: Some(2),
            ..acc()
        };
        assert_eq!(
            decide(&inv(), &new_pm, now),
            Decision::Collect(Trigger::PaymentMethodChanged)
        );
        let credit = AccountPaymentState {
            credit_balance: 500,
            ..acc()
        };
        assert_eq!(
            decide(&inv(), &credit, now),
            Decision::Collect(Trigger::CreditAdded)
        );
        let blocked = InvoiceCollectionState {
            blocked_pm_version: Some(1),
            ..inv()
        };
        assert_eq!(
            decide(&blocked, &acc(), t("2026-11-05T00:00:00Z")),
            Decision::BlockedUntilPaymentMethodChanges
        );
        assert_eq!(
            decide(&blocked, &new_pm, now),
            Decision::Collect(Trigger::PaymentMethodChanged)
        );
        let unknown = InvoiceCollectionState {
            unknown_attempt: true,
            ..inv()
        };
        assert_eq!(decide(&unknown, &new_pm, now), Decision::SettleUnknown);
        let open = InvoiceCollectionState {
            status: crate::document::InvoiceStatus::Open,
            last_attempt_at: None,
            last_attempt_pm_version: None,
            next_attempt_at: None,
            ..inv()
        };
        assert_eq!(
            decide(&open, &acc(), now),
            Decision::Collect(Trigger::Initial)
        );
        let done = InvoiceCollectionState {
            collection_exhausted: true,
            next_attempt_at: None,
            ..inv()
        };
        assert_eq!(
            decide(&done, &acc(), t("2026-12-01T00:00:00Z")),
            Decision::Exhausted
        );
    }

    /// Issue 19 §2: a payment method set on the wall clock (December) and a collect replayed at
    /// an earlier date (November) must not make every retry "payment method changed".
    #[test]
    fn payment_method_change_is_a_fact_about_the_method_not_two_clocks() {
        // The last attempt used version 2: the method set "later" on another clock is that one.
        let after_change = InvoiceCollectionState {
            last_attempt_pm_version: Some(2),
            ..inv()
        };
        let now_pm = AccountPaymentState {
            pm_version: Some(2),
            ..acc()
        };
        assert_eq!(
            decide(&after_change, &now_pm, t("2026-11-04T06:00:00Z")),
            Decision::Collect(Trigger::Retry),
            "a retry on the schedule, whatever the clocks"
        );
        assert_eq!(
            decide(&after_change, &now_pm, t("2026-11-02T00:00:00Z")),
            Decision::WaitUntilRetry
        );
        // The last attempt had no method at all: any method now is a change.
        let none_before = InvoiceCollectionState {
            last_attempt_pm_version: None,
            ..inv()
        };
        assert_eq!(
            decide(&none_before, &now_pm, t("2026-11-02T00:00:00Z")),
            Decision::Collect(Trigger::PaymentMethodChanged)
        );
        // No method now and none before: nothing changed.
        let no_pm = AccountPaymentState {
            pm_version: None,
            ..acc()
        };
        assert_eq!(
            decide(&none_before, &no_pm, t("2026-11-02T00:00:00Z")),
            Decision::WaitUntilRetry
        );
    }

    #[test]
    fn sepa_debit_is_for_customers_located_in_the_eu() {
        assert!(sepa_debit_allowed("FR").is_ok());
        assert!(sepa_debit_allowed("DE").is_ok());
        assert!(sepa_debit_allowed("US").unwrap_err().contains("US"));
        assert!(sepa_debit_allowed("CH").is_err(), "in SEPA, not in the EU");
    }

    #[test]
    fn plans_credit_then_charge_and_carries_small_amounts() {
        assert_eq!(
            plan_collection(1000, 300, false),
            CollectionPlan {
                credit_to_apply: 300,
                charge: 700,
                carry_forward: 0,
                waive: 0
            }
        );
        assert_eq!(
            plan_collection(1000, 5000, false),
            CollectionPlan {
                credit_to_apply: 1000,
                charge: 0,
                carry_forward: 0,
                waive: 0
            }
        );
        assert_eq!(
            plan_collection(1000, 970, false),
            CollectionPlan {
                credit_to_apply: 970,
                charge: 0,
                carry_forward: 30,
                waive: 0
            }
        );
        assert_eq!(
            plan_collection(1000, 970, true),
            CollectionPlan {
                credit_to_apply: 970,
                charge: 0,
                carry_forward: 0,
                waive: 30
            }
        );
        assert_eq!(
            plan_collection(49, 0, false),
            CollectionPlan {
                credit_to_apply: 0,
                charge: 0,
                carry_forward: 49,
                waive: 0
            }
        );
        assert_eq!(
            plan_collection(50, 0, false),
            CollectionPlan {
                credit_to_apply: 0,
                charge: 50,
                carry_forward: 0,
                waive: 0
            }
        );
        // Closing: a charge of at least €0.50 is made as usual; nothing is ever waived then.
        assert_eq!(plan_collection(50, 0, true).charge, 50);
        assert_eq!(plan_collection(5000, 0, true).waive, 0);
        assert_eq!(
            plan_collection(0, 100, true),
            CollectionPlan {
                credit_to_apply: 0,
                charge: 0,
                carry_forward: 0,
                waive: 0
            }
        );
    }

    #[test]
    fn referral_window_is_the_first_twelve_months() {
        let created = t("2025-10-15T10:00:00Z");
        assert!(referral_applies(created, "2025-10".parse().unwrap()));
        assert!(referral_applies(created, "2026-09".parse().unwrap()));
        assert!(
            !referral_applies(created, "2026-10".parse().unwrap()),
            "month 13"
        );
        assert!(!referral_applies(created, "2025-09".parse().unwrap()));
        assert_eq!(referral_reward(2971), 594); // 5.942
        assert_eq!(referral_reward(2), 0);
        assert_eq!(referral_reward(3), 1); // 0.006 -> 0.01
        // Exact at the edges of i64, no overflow (issue 25).
        assert_eq!(referral_reward(i64::MAX), 1844674407370955161);
        assert_eq!(referral_reward(i64::MIN), -1844674407370955162);
    }

    #[test]
    fn rewards_never_exceed_the_subtotal_and_the_rest_waits() {
        assert_eq!(
            allocate_rewards(&[(1, 500), (2, 700)], 1000),
            vec![(1, 500), (2, 500)]
        );
        assert_eq!(allocate_rewards(&[(1, 500)], 0), vec![]);
        assert_eq!(allocate_rewards(&[(1, 0), (2, 10)], 100), vec![(2, 10)]);
    }
}
