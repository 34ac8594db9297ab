//! Disputes (chargebacks): the card holder's bank takes a payment back while it investigates.
//! A dispute is never a credit note (no document corrects the invoice: the price was owed):
//! lost, the amount is owed again; won, nothing changes. The rules over plain values; the
//! store and the CLI (`billrun payment dispute`, and the Stripe webhook's
//! `charge.dispute.*`) apply them.

use serde::Serialize;

/// Where a dispute stands (Stripe API "Disputes": `needs_response`, `under_review`, … are
/// all `Open` here; `won` and `lost` are final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    Open,
    Won,
    Lost,
}

impl DisputeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeStatus::Open => "open",
            DisputeStatus::Won => "won",
            DisputeStatus::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<DisputeStatus> {
        match s {
            "open" => Some(DisputeStatus::Open),
            "won" => Some(DisputeStatus::Won),
            "lost" => Some(DisputeStatus::Lost),
            _ => None,
        }
    }
}

/// What recording a dispute's status does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeEffect {
    /// Recorded; the invoice does not change (open, or won).
    Record,
    /// Lost: the amount is owed again (the invoice is unpaid, dunning from now, the account told).
    Reopen,
    /// The same status again (a replayed webhook, a repeated command): nothing changes.
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisputeError {
    #[error("the dispute is already {0}: a closed dispute does not change")]
    Closed(&'static str),
    #[error("{asked} disputed, but only {paid} was paid through the gateway on this invoice")]
    MoreThanPaid { asked: i64, paid: i64 },
    #[error("a disputed amount is above zero")]
    NotPositive,
}

/// The effect of a dispute moving from `before` (none when first seen) to `now`, for
/// `amount` of what the gateway collected on the invoice (`paid`).
pub fn transition(
    before: Option<DisputeStatus>,
    now: DisputeStatus,
    amount: i64,
    paid: i64,
) -> Result<DisputeEffect, DisputeError> {
    if amount <= 0 {
        return Err(DisputeError::NotPositive);
    }
    if amount > paid {
        return Err(DisputeError::MoreThanPaid {
            asked: amount,
            paid,
        });
    }
    match (before, now) {
        (Some(b), n) if b == n => Ok(DisputeEffect::Nothing),
        (Some(DisputeStatus::Won), _) => Err(DisputeError::Closed("won")),
        (Some(DisputeStatus::Lost), _) => Err(DisputeError::Closed("lost")),
        (None | Some(DisputeStatus::Open), DisputeStatus::Lost) => Ok(DisputeEffect::Reopen),
        (None | Some(DisputeStatus::Open), DisputeStatus::Open | DisputeStatus::Won) => {
            Ok(DisputeEffect::Record)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DisputeStatus::*;

    #[test]
    fn a_lost_dispute_reopens_the_amount_once_and_a_won_one_changes_nothing() {
        assert_eq!(transition(None, Open, 500, 3600), Ok(DisputeEffect::Record));
        assert_eq!(
            transition(Some(Open), Lost, 500, 3600),
            Ok(DisputeEffect::Reopen)
        );
        assert_eq!(
            transition(Some(Lost), Lost, 500, 3600),
            Ok(DisputeEffect::Nothing)
        );
        assert_eq!(
            transition(Some(Open), Won, 500, 3600),
            Ok(DisputeEffect::Record)
        );
        assert_eq!(
            transition(Some(Won), Lost, 500, 3600),
            Err(DisputeError::Closed("won"))
        );
        assert_eq!(
            transition(None, Lost, 3601, 3600),
            Err(DisputeError::MoreThanPaid {
                asked: 3601,
                paid: 3600
            })
        );
        assert_eq!(
            transition(None, Open, 0, 3600),
            Err(DisputeError::NotPositive)
        );
    }
}
