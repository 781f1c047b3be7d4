# Nederlands — shopper pages of treefort-webpay

## Page chrome

language-name = Nederlands
skip-to-content = Naar de inhoud
test-mode = Testmodus: er wordt geen echte betaling uitgevoerd.

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { ": " }

## Checkout

checkout-title = Abonneren op { $plan }
account = Account
every-month =
    { $n ->
        [one] per maand
       *[other] per { $n } maanden
    }
every-year =
    { $n ->
        [one] per jaar
       *[other] per { $n } jaar
    }
trial =
    { $n ->
        [one] Gratis proefperiode van { $n } dag
       *[other] Gratis proefperiode van { $n } dagen
    }
promo = Kortingscode { $code }
regular-price = Normale prijs
due-today = Vandaag te betalen
amount-due-label = Te betalen bedrag
then = Daarna
card-details = Kaartgegevens
card-number = Kaartnummer
card-expiry = Vervaldatum (MM/JJ)
card-expiry-placeholder = MM/JJ
card-cvc = CVC
secure-note = Uw kaartgegevens gaan rechtstreeks naar de betaalprovider; deze site ziet ze nooit.
pay = Betalen en abonneren
start-trial = Gratis proefperiode starten
back-to-app = Annuleren en teruggaan
sandbox-cards = Testkaarten: 4242 4242 4242 4242 betaalt, 4000 0000 0000 0002 wordt geweigerd.
declined = Uw kaart is geweigerd. Er is niets afgeschreven; probeer een andere kaart.
invalid-card = Controleer de kaartgegevens.
promo-exhausted = Deze kortingscode kan niet meer worden gebruikt. Er is niets afgeschreven.
already-subscribed = U hebt al een abonnement. Er is niets afgeschreven.
in-progress = Deze betaling wordt al verwerkt. Wacht even en laad de pagina opnieuw.
expired-title = Deze link is verlopen
expired-body = Ga terug naar de app en begin opnieuw.
not-found-title = Link niet gevonden
used-title = Deze betaling is afgerond
used-body = Deze link is al gebruikt. Ga terug naar de app om uw abonnement te bekijken.
activating-title = Betaling ontvangen
activating-body = We activeren uw abonnement. Deze pagina gaat vanzelf verder.
continue = Doorgaan

## Billing portal

portal-title = Facturering
no-subscriptions = U hebt geen abonnementen.
status-trialing = Gratis proefperiode
status-active = Actief
status-past-due = Betaling mislukt
past-due-detail = Uw laatste betaling is mislukt. We proberen het opnieuw tot { $date }; werk uw kaart bij om toegang te houden.
next-charge = Volgende afschrijving: { $amount } op { $date }
plan-change = Overstap naar { $plan } op { $date }
resume = Abonnement hervatten
resumed-ok = Uw abonnement loopt door en wordt aan het einde van de periode verlengd.
replace-card = Kaart vervangen
card-replaced = Uw kaart is bijgewerkt.
save-card = Kaart opslaan
promo-then = Vanaf de { $n }e afschrijving
switch-title = Overstappen naar { $plan }
switch-body = Uw huidige abonnement { $current } loopt door tot { $date }. Daarna start { $plan } voor { $price }. Vandaag wordt er niets afgeschreven.
switch-button = Overstap bevestigen
status-canceled = Opgezegd
status-ended = Beëindigd
paid-until = Betaald tot { $date }
trial-ends = Proefperiode eindigt op { $date }
access-until = Opgezegd: toegang tot { $date }
cancel-subscription = Abonnement opzeggen
canceled-ok = Uw abonnement is opgezegd. U houdt toegang tot het einde van de betaalde periode.
cancel-failed = We konden uw abonnement nu niet opzeggen. Er is niets gewijzigd; probeer het opnieuw.
payment-method = Betaalmethode
payments = Betalingen
no-payments = Nog geen betalingen.
date = Datum
amount = Bedrag
status = Status
paid = Betaald
payment-declined = Geweigerd
error-title = Er ging iets mis
error-body = Er is niets dubbel afgeschreven. Probeer het zo opnieuw.
card = Kaart
authenticate-title = Bevestig uw betaling
authenticate-body = Uw bank vraagt u deze betaling te bevestigen. Volg de stappen in het venster dat wordt geopend.
confirm-payment = Betaling bevestigen
confirm-payment-needed = Uw bank vraagt u de laatste betaling van uw abonnement te bevestigen.
payment-confirmed = Bedankt: de betaling is bevestigd. Uw abonnement loopt door.
refunded = Terugbetaald
partially-refunded = Gedeeltelijk terugbetaald
disputed = Betwist
too-many-attempts = Met deze link zijn te veel betaalpogingen mislukt; hij kan niet meer worden gebruikt. Ga terug naar de app en begin opnieuw.

## Refusals

too-many-requests = Te veel verzoeken vanaf uw netwerk. Wacht even en probeer het opnieuw.
cross-site = Dit formulier is vanaf een andere site verstuurd, dus er is niets gedaan. Open de link opnieuw vanuit de app.
