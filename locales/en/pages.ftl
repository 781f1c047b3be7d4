# English — shopper pages of treefort-webpay
#
# Variables: $plan and $current are plan names; $date is a date already formatted for
# the language (CLDR medium: "Jan 9, 2027", "09.01.2027", "9 janv. 2027", "2027/01/09");
# $amount is a formatted amount ("€9.99"); $price is an amount followed by the
# every-month / every-year text ("€9.99 every month"); $code is a promo code;
# $n is a number (pass it as a number, not a string, so plural selection works).

## Page chrome

language-name = English
skip-to-content = Skip to content
test-mode = Test mode: no real payment is taken.

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { ": " }

## Checkout

checkout-title = Subscribe to { $plan }
account = Account
# After a price: "€9.99 every month", "€25.00 every 3 months".
every-month =
    { $n ->
        [one] every month
       *[other] every { $n } months
    }
every-year =
    { $n ->
        [one] every year
       *[other] every { $n } years
    }
# $n: the trial's length in days. English needs no plural here ("1-day", "14-day").
trial = { $n }-day free trial
promo = Promo code { $code }
regular-price = Regular price
due-today = Due today
amount-due-label = Amount due
# Before the date the trial ends and the price from then on.
then = Then
card-details = Card details
card-number = Card number
card-expiry = Expiry (MM/YY)
card-expiry-placeholder = MM/YY
card-cvc = CVC
# Only on the page with the payment provider's card field (Stripe).
secure-note = Your card details go straight to the payment provider; this site never sees them.
pay = Pay and subscribe
start-trial = Start free trial
back-to-app = Cancel and go back
sandbox-cards = Test cards: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined.
declined = Your card was declined. No payment was taken; please try another card.
invalid-card = Please check the card details.
promo-exhausted = This promo code can no longer be used. No payment was taken.
already-subscribed = You already have a subscription. No payment was taken.
in-progress = This payment is already being processed. Please wait a moment and reload.
expired-title = This link has expired
expired-body = Please go back to the app and start again.
not-found-title = Link not found
used-title = This checkout is complete
used-body = This link has already been used. Go back to the app to see your subscription.
activating-title = Payment received
activating-body = We are activating your subscription. This page moves on by itself.
continue = Continue

## Billing portal

portal-title = Billing
no-subscriptions = You have no subscriptions.
status-trialing = Free trial
status-active = Active
status-past-due = Payment failed
past-due-detail = Your last payment failed. We will try again until { $date }; update your card to keep access.
next-charge = Next charge: { $amount } on { $date }
# Follows next-charge after a dash.
plan-change = Changes to { $plan } on { $date }
resume = Resume subscription
resumed-ok = Your subscription continues. It renews at the end of the period.
replace-card = Replace card
card-replaced = Your card was updated.
save-card = Save card
# $n: the position of the first charge at the full price (2 = the second charge), not a count.
# Followed by ": <price> <every-month>".
promo-then = From charge { $n } on
switch-title = Switch to { $plan }
switch-body = Your current plan { $current } continues until { $date }. Then { $plan } starts at { $price }. Nothing is charged today.
switch-button = Confirm the switch
status-canceled = Canceled
status-ended = Ended
paid-until = Paid until { $date }
trial-ends = Trial ends { $date }
access-until = Canceled: access until { $date }
cancel-subscription = Cancel subscription
canceled-ok = Your subscription is canceled. You keep access until the end of the paid period.
cancel-failed = We could not cancel your subscription right now. Nothing was changed; please try again.
payment-method = Payment method
payments = Payments
no-payments = No payments yet.
# Column headings of the payments table.
date = Date
amount = Amount
status = Status
# Statuses of a payment.
paid = Paid
payment-declined = Declined
error-title = Something went wrong
error-body = Nothing was charged twice. Please try again in a moment.
card = Card
authenticate-title = Confirm your payment
authenticate-body = Your bank asks you to confirm this payment. Follow the steps in the window that opens.
confirm-payment = Confirm your payment
confirm-payment-needed = Your bank asks you to confirm the last payment of your subscription.
payment-confirmed = Thank you: the payment is confirmed. Your subscription continues.
refunded = Refunded
partially-refunded = Partly refunded
disputed = Disputed
too-many-attempts = This link has had too many failed payment attempts and can no longer be used. Please go back to the app and start again.

## Refusals

too-many-requests = Too many requests from your network. Please wait a moment and try again.
cross-site = This form was sent from another site, so nothing was done. Open the link from the app again.
