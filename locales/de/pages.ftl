# Deutsch — shopper pages of treefort-webpay

## Page chrome

language-name = Deutsch
skip-to-content = Zum Inhalt springen
test-mode = Testmodus: Es wird keine echte Zahlung ausgeführt.

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { ": " }

## Checkout

checkout-title = { $plan } abonnieren
account = Konto
every-month =
    { $n ->
        [one] monatlich
       *[other] alle { $n } Monate
    }
every-year =
    { $n ->
        [one] jährlich
       *[other] alle { $n } Jahre
    }
trial =
    { $n ->
        [one] { $n } Tag kostenlos testen
       *[other] { $n } Tage kostenlos testen
    }
promo = Aktionscode { $code }
regular-price = Regulärer Preis
due-today = Heute fällig
amount-due-label = Fälliger Betrag
then = Danach
card-details = Kartendaten
card-number = Kartennummer
card-expiry = Gültig bis (MM/JJ)
card-expiry-placeholder = MM/JJ
card-cvc = Prüfnummer
secure-note = Ihre Kartendaten gehen direkt an den Zahlungsdienstleister; diese Website sieht sie nie.
pay = Bezahlen und abonnieren
start-trial = Kostenlos testen
back-to-app = Abbrechen und zurück
sandbox-cards = Testkarten: 4242 4242 4242 4242 zahlt, 4000 0000 0000 0002 wird abgelehnt.
declined = Ihre Karte wurde abgelehnt. Es wurde nichts abgebucht; bitte versuchen Sie eine andere Karte.
invalid-card = Bitte prüfen Sie die Kartendaten.
promo-exhausted = Dieser Aktionscode kann nicht mehr verwendet werden. Es wurde nichts abgebucht.
already-subscribed = Sie haben bereits ein Abonnement. Es wurde nichts abgebucht.
in-progress = Diese Zahlung wird bereits verarbeitet. Bitte warten Sie kurz und laden Sie neu.
expired-title = Dieser Link ist abgelaufen
expired-body = Bitte kehren Sie zur App zurück und beginnen Sie erneut.
not-found-title = Link nicht gefunden
used-title = Dieser Bezahlvorgang ist abgeschlossen
used-body = Dieser Link wurde bereits verwendet. In der App sehen Sie Ihr Abonnement.
activating-title = Zahlung erhalten
activating-body = Wir aktivieren Ihr Abonnement. Diese Seite geht von selbst weiter.
continue = Weiter

## Billing portal

portal-title = Abrechnung
no-subscriptions = Sie haben keine Abonnements.
status-trialing = Testphase
status-active = Aktiv
status-past-due = Zahlung fehlgeschlagen
past-due-detail = Ihre letzte Zahlung ist fehlgeschlagen. Wir versuchen es bis { $date } erneut; aktualisieren Sie Ihre Karte, um den Zugang zu behalten.
next-charge = Nächste Abbuchung: { $amount } am { $date }
plan-change = Wechsel zu { $plan } am { $date }
resume = Abonnement fortsetzen
resumed-ok = Ihr Abonnement läuft weiter und verlängert sich am Ende des Zeitraums.
replace-card = Karte ersetzen
card-replaced = Ihre Karte wurde aktualisiert.
save-card = Karte speichern
promo-then = Ab der { $n }. Abbuchung
switch-title = Wechsel zu { $plan }
switch-body = Ihr aktueller Tarif { $current } läuft bis { $date }. Danach beginnt { $plan } zu { $price }. Heute wird nichts abgebucht.
switch-button = Wechsel bestätigen
status-canceled = Gekündigt
status-ended = Beendet
paid-until = Bezahlt bis { $date }
trial-ends = Testphase endet am { $date }
access-until = Gekündigt: Zugang bis { $date }
cancel-subscription = Abonnement kündigen
canceled-ok = Ihr Abonnement ist gekündigt. Sie behalten den Zugang bis zum Ende des bezahlten Zeitraums.
cancel-failed = Die Kündigung ist gerade nicht möglich. Es wurde nichts geändert; bitte versuchen Sie es erneut.
payment-method = Zahlungsmittel
payments = Zahlungen
no-payments = Noch keine Zahlungen.
date = Datum
amount = Betrag
status = Status
paid = Bezahlt
payment-declined = Abgelehnt
error-title = Etwas ist schiefgelaufen
error-body = Es wurde nichts doppelt abgebucht. Bitte versuchen Sie es gleich noch einmal.
card = Karte
authenticate-title = Zahlung bestätigen
authenticate-body = Ihre Bank bittet Sie, diese Zahlung zu bestätigen. Folgen Sie den Schritten im Fenster, das sich öffnet.
confirm-payment = Zahlung bestätigen
confirm-payment-needed = Ihre Bank bittet Sie, die letzte Zahlung Ihres Abonnements zu bestätigen.
payment-confirmed = Danke: Die Zahlung ist bestätigt. Ihr Abonnement läuft weiter.
refunded = Erstattet
partially-refunded = Teilweise erstattet
disputed = Angefochten
too-many-attempts = Mit diesem Link gab es zu viele fehlgeschlagene Zahlungsversuche; er kann nicht mehr verwendet werden. Bitte kehren Sie zur App zurück und beginnen Sie neu.

## Refusals

too-many-requests = Zu viele Anfragen aus Ihrem Netzwerk. Bitte warten Sie einen Moment und versuchen Sie es erneut.
cross-site = Dieses Formular wurde von einer anderen Website gesendet, daher wurde nichts ausgeführt. Öffnen Sie den Link erneut aus der App.
