# Italiano — shopper pages of treefort-webpay

## Page chrome

language-name = Italiano
skip-to-content = Vai al contenuto
test-mode = Modalità di prova: non viene effettuato alcun pagamento reale.

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { ": " }

## Checkout

checkout-title = Abbonamento a { $plan }
account = Account
every-month =
    { $n ->
        [one] ogni mese
       *[other] ogni { $n } mesi
    }
every-year =
    { $n ->
        [one] ogni anno
       *[other] ogni { $n } anni
    }
trial =
    { $n ->
        [one] Prova gratuita di { $n } giorno
       *[other] Prova gratuita di { $n } giorni
    }
promo = Codice promozionale { $code }
regular-price = Prezzo normale
due-today = Da pagare oggi
amount-due-label = Importo dovuto
then = Poi
card-details = Dati della carta
card-number = Numero della carta
card-expiry = Scadenza (MM/AA)
card-expiry-placeholder = MM/AA
card-cvc = Codice di sicurezza
secure-note = I dati della sua carta vengono inviati direttamente al gestore dei pagamenti; questo sito non li vede mai.
pay = Paga e attiva l'abbonamento
start-trial = Inizia la prova gratuita
back-to-app = Annulla e torna indietro
sandbox-cards = Carte di prova: 4242 4242 4242 4242 viene addebitata, 4000 0000 0000 0002 viene rifiutata.
declined = La sua carta è stata rifiutata. Non è stato addebitato nulla; provi con un'altra carta.
invalid-card = Controlli i dati della carta.
promo-exhausted = Questo codice promozionale non può più essere utilizzato. Non è stato addebitato nulla.
already-subscribed = Ha già un abbonamento. Non è stato addebitato nulla.
in-progress = Questo pagamento è già in elaborazione. Attenda un momento e ricarichi la pagina.
expired-title = Questo link è scaduto
expired-body = Torni all'app e ricominci.
not-found-title = Link non trovato
used-title = Questo pagamento è stato completato
used-body = Questo link è già stato utilizzato. Torni all'app per vedere il suo abbonamento.
activating-title = Pagamento ricevuto
activating-body = Stiamo attivando il suo abbonamento. Questa pagina proseguirà automaticamente.
continue = Continua

## Billing portal

portal-title = Fatturazione
no-subscriptions = Non ha abbonamenti.
status-trialing = Prova gratuita
status-active = Attivo
status-past-due = Pagamento non riuscito
past-due-detail = Il suo ultimo pagamento non è riuscito. Riproveremo fino al giorno { $date }; aggiorni la carta per mantenere l'accesso.
next-charge = Prossimo addebito: { $amount } il giorno { $date }
plan-change = Passaggio a { $plan } il giorno { $date }
resume = Riattiva l'abbonamento
resumed-ok = Il suo abbonamento continua e si rinnoverà alla fine del periodo.
replace-card = Sostituisci la carta
card-replaced = La sua carta è stata aggiornata.
save-card = Salva la carta
promo-then = Dal { $n }° addebito in poi
switch-title = Passaggio a { $plan }
switch-body = Il suo piano attuale { $current } resta attivo fino al giorno { $date }. Poi inizia { $plan } a { $price }. Oggi non viene addebitato nulla.
switch-button = Conferma il cambio
status-canceled = Disdetto
status-ended = Terminato
paid-until = Pagato fino al giorno { $date }
trial-ends = La prova termina il giorno { $date }
access-until = Disdetto: accesso fino al giorno { $date }
cancel-subscription = Disdici l'abbonamento
canceled-ok = Il suo abbonamento è stato disdetto. Mantiene l'accesso fino alla fine del periodo pagato.
cancel-failed = Al momento non è stato possibile disdire il suo abbonamento. Non è stato modificato nulla; riprovi.
payment-method = Metodo di pagamento
payments = Pagamenti
no-payments = Ancora nessun pagamento.
date = Data
amount = Importo
status = Stato
paid = Pagato
payment-declined = Rifiutato
error-title = Si è verificato un problema
error-body = Non è stato addebitato nulla due volte. Riprovi tra un momento.
card = Carta
authenticate-title = Confermi il pagamento
authenticate-body = La sua banca le chiede di confermare questo pagamento. Segua i passaggi nella finestra che si apre.
confirm-payment = Conferma il pagamento
confirm-payment-needed = La sua banca le chiede di confermare l'ultimo pagamento del suo abbonamento.
payment-confirmed = Grazie: il pagamento è confermato. Il suo abbonamento continua.
refunded = Rimborsato
partially-refunded = Rimborsato in parte
disputed = Contestato
too-many-attempts = Con questo link ci sono stati troppi tentativi di pagamento non riusciti e non può più essere utilizzato. Torni all'app e ricominci.

## Refusals

too-many-requests = Troppe richieste dalla sua rete. Attenda un momento e riprovi.
cross-site = Questo modulo è stato inviato da un altro sito, quindi non è stato fatto nulla. Riapra il link dall'app.
