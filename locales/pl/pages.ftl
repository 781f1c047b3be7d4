# Polski — shopper pages of treefort-webpay

## Page chrome

language-name = Polski
skip-to-content = Przejdź do treści
test-mode = Tryb testowy: żadna prawdziwa płatność nie jest pobierana.

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { ": " }

## Checkout

checkout-title = Subskrypcja { $plan }
account = Konto
every-month =
    { $n ->
        [one] co miesiąc
        [few] co { $n } miesiące
        [many] co { $n } miesięcy
       *[other] co { $n } miesiąca
    }
every-year =
    { $n ->
        [one] co roku
        [few] co { $n } lata
        [many] co { $n } lat
       *[other] co { $n } roku
    }
trial =
    { $n ->
        [one] { $n } dzień bezpłatnego okresu próbnego
        [few] { $n } dni bezpłatnego okresu próbnego
        [many] { $n } dni bezpłatnego okresu próbnego
       *[other] { $n } dnia bezpłatnego okresu próbnego
    }
promo = Kod promocyjny { $code }
regular-price = Cena regularna
due-today = Do zapłaty dzisiaj
amount-due-label = Kwota do zapłaty
then = Następnie
card-details = Dane karty
card-number = Numer karty
card-expiry = Data ważności (MM/RR)
card-expiry-placeholder = MM/RR
card-cvc = Kod CVC
secure-note = Dane karty trafiają bezpośrednio do operatora płatności; ta strona nigdy ich nie widzi.
pay = Zapłać i subskrybuj
start-trial = Rozpocznij bezpłatny okres próbny
back-to-app = Anuluj i wróć
sandbox-cards = Karty testowe: 4242 4242 4242 4242 – płatność przechodzi, 4000 0000 0000 0002 – płatność odrzucona.
declined = Karta została odrzucona. Nie pobrano żadnej opłaty; prosimy spróbować innej karty.
invalid-card = Prosimy sprawdzić dane karty.
promo-exhausted = Tego kodu promocyjnego nie można już użyć. Nie pobrano żadnej opłaty.
already-subscribed = To konto ma już subskrypcję. Nie pobrano żadnej opłaty.
in-progress = Ta płatność jest już przetwarzana. Prosimy chwilę poczekać i odświeżyć stronę.
expired-title = Ten link wygasł
expired-body = Prosimy wrócić do aplikacji i zacząć od nowa.
not-found-title = Nie znaleziono linku
used-title = Ta płatność została już zrealizowana
used-body = Ten link został już użyty. Subskrypcję można zobaczyć w aplikacji.
activating-title = Otrzymaliśmy płatność
activating-body = Aktywujemy subskrypcję. Ta strona przejdzie dalej automatycznie.
continue = Dalej

## Billing portal

portal-title = Rozliczenia
no-subscriptions = Brak subskrypcji.
status-trialing = Okres próbny
status-active = Aktywna
status-past-due = Płatność nieudana
past-due-detail = Ostatnia płatność nie powiodła się. Będziemy ponawiać próby do { $date }; aby zachować dostęp, prosimy zaktualizować kartę.
next-charge = Następne obciążenie: { $amount } w dniu { $date }
plan-change = Zmiana na { $plan } w dniu { $date }
resume = Wznów subskrypcję
resumed-ok = Subskrypcja trwa dalej. Odnowi się na koniec okresu rozliczeniowego.
replace-card = Zmień kartę
card-replaced = Karta została zaktualizowana.
save-card = Zapisz kartę
promo-then = Od { $n }. obciążenia
switch-title = Zmiana na { $plan }
switch-body = Obecny plan { $current } obowiązuje do { $date }. Następnie zacznie obowiązywać { $plan } w cenie { $price }. Dziś nic nie zostanie pobrane.
switch-button = Potwierdź zmianę
status-canceled = Anulowana
status-ended = Zakończona
paid-until = Opłacona do { $date }
trial-ends = Okres próbny kończy się { $date }
access-until = Anulowana: dostęp do { $date }
cancel-subscription = Anuluj subskrypcję
canceled-ok = Subskrypcja została anulowana. Dostęp pozostaje do końca opłaconego okresu.
cancel-failed = Nie udało się teraz anulować subskrypcji. Nic nie zostało zmienione; prosimy spróbować ponownie.
payment-method = Metoda płatności
payments = Płatności
no-payments = Brak płatności.
date = Data
amount = Kwota
status = Status
paid = Opłacona
payment-declined = Odrzucona
error-title = Coś poszło nie tak
error-body = Żadna kwota nie została pobrana podwójnie. Prosimy spróbować ponownie za chwilę.
card = Karta
authenticate-title = Potwierdź płatność
authenticate-body = Bank prosi o potwierdzenie tej płatności. Prosimy postępować zgodnie z instrukcjami w oknie, które się otworzy.
confirm-payment = Potwierdź płatność
confirm-payment-needed = Bank prosi o potwierdzenie ostatniej płatności za subskrypcję.
payment-confirmed = Dziękujemy: płatność została potwierdzona. Subskrypcja trwa dalej.
refunded = Zwrócona
partially-refunded = Częściowo zwrócona
disputed = Zakwestionowana
too-many-attempts = Z tym linkiem było zbyt wiele nieudanych prób płatności i nie można go już użyć. Prosimy wrócić do aplikacji i zacząć od nowa.

## Refusals

too-many-requests = Zbyt wiele żądań z tej sieci. Prosimy chwilę odczekać i spróbować ponownie.
cross-site = Ten formularz został wysłany z innej witryny, więc nic nie zostało zrobione. Prosimy ponownie otworzyć link z aplikacji.
