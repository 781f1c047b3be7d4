# Svenska — shopper pages of treefort-webpay

## Page chrome

language-name = Svenska
skip-to-content = Hoppa till innehållet
test-mode = Testläge: ingen riktig betalning genomförs.

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { ": " }

## Checkout

checkout-title = Prenumerera på { $plan }
account = Konto
every-month =
    { $n ->
        [one] per månad
       *[other] per { $n } månader
    }
every-year =
    { $n ->
        [one] per år
       *[other] per { $n } år
    }
trial =
    { $n ->
        [one] { $n } dags gratis provperiod
       *[other] { $n } dagars gratis provperiod
    }
promo = Kampanjkod { $code }
regular-price = Ordinarie pris
due-today = Att betala i dag
amount-due-label = Belopp att betala
then = Därefter
card-details = Kortuppgifter
card-number = Kortnummer
card-expiry = Giltigt till (MM/ÅÅ)
card-expiry-placeholder = MM/ÅÅ
card-cvc = CVC
secure-note = Dina kortuppgifter går direkt till betalningsleverantören; den här webbplatsen ser dem aldrig.
pay = Betala och prenumerera
start-trial = Starta gratis provperiod
back-to-app = Avbryt och gå tillbaka
sandbox-cards = Testkort: 4242 4242 4242 4242 godkänns, 4000 0000 0000 0002 nekas.
declined = Ditt kort nekades. Ingen betalning har dragits; försök med ett annat kort.
invalid-card = Kontrollera kortuppgifterna.
promo-exhausted = Den här kampanjkoden kan inte längre användas. Ingen betalning har dragits.
already-subscribed = Du har redan en prenumeration. Ingen betalning har dragits.
in-progress = Betalningen behandlas redan. Vänta en stund och ladda om sidan.
expired-title = Länken har gått ut
expired-body = Gå tillbaka till appen och börja om.
not-found-title = Länken hittades inte
used-title = Betalningen är slutförd
used-body = Länken har redan använts. Gå tillbaka till appen för att se din prenumeration.
activating-title = Betalningen är mottagen
activating-body = Vi aktiverar din prenumeration. Sidan går vidare av sig själv.
continue = Fortsätt

## Billing portal

portal-title = Fakturering
no-subscriptions = Du har inga prenumerationer.
status-trialing = Gratis provperiod
status-active = Aktiv
status-past-due = Betalningen misslyckades
past-due-detail = Din senaste betalning misslyckades. Vi försöker igen fram till { $date }; uppdatera ditt kort för att behålla åtkomsten.
next-charge = Nästa dragning: { $amount } den { $date }
plan-change = Byte till { $plan } den { $date }
resume = Återuppta prenumerationen
resumed-ok = Din prenumeration fortsätter och förnyas i slutet av perioden.
replace-card = Byt kort
card-replaced = Ditt kort har uppdaterats.
save-card = Spara kort
promo-then = Från och med dragning { $n }
switch-title = Byt till { $plan }
switch-body = Din nuvarande plan { $current } fortsätter till { $date }. Därefter börjar { $plan } för { $price }. Ingenting dras i dag.
switch-button = Bekräfta bytet
status-canceled = Uppsagd
status-ended = Avslutad
paid-until = Betald till { $date }
trial-ends = Provperioden slutar den { $date }
access-until = Uppsagd: åtkomst till { $date }
cancel-subscription = Säg upp prenumerationen
canceled-ok = Din prenumeration är uppsagd. Du behåller åtkomsten till slutet av den betalda perioden.
cancel-failed = Vi kunde inte säga upp din prenumeration just nu. Ingenting har ändrats; försök igen.
payment-method = Betalningsmetod
payments = Betalningar
no-payments = Inga betalningar än.
date = Datum
amount = Belopp
status = Status
paid = Betald
payment-declined = Nekad
error-title = Något gick fel
error-body = Ingenting har dragits två gånger. Försök igen om en stund.
card = Kort
authenticate-title = Bekräfta din betalning
authenticate-body = Din bank ber dig bekräfta den här betalningen. Följ stegen i fönstret som öppnas.
confirm-payment = Bekräfta betalningen
confirm-payment-needed = Din bank ber dig bekräfta den senaste betalningen för din prenumeration.
payment-confirmed = Tack: betalningen är bekräftad. Din prenumeration fortsätter.
refunded = Återbetald
partially-refunded = Delvis återbetald
disputed = Bestriden
too-many-attempts = Det har gjorts för många misslyckade betalningsförsök med den här länken, så den kan inte längre användas. Gå tillbaka till appen och börja om.

## Refusals

too-many-requests = För många förfrågningar från ditt nätverk. Vänta en stund och försök igen.
cross-site = Formuläret skickades från en annan webbplats, så ingenting gjordes. Öppna länken från appen igen.
