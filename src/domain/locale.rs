//! Languages of the shopper pages: negotiation from Treefort's `locale` (`de-DE` → `de` → `en`),
//! number formats and the page texts. Adding a language is adding one `Texts` value.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Fr,
    Es,
}

/// How numbers are written in a language.
pub struct NumberFormat {
    pub decimal: &'static str,
    pub group: &'static str,
    pub symbol_first: bool,
}

/// A BCP 47 language tag as Treefort sends it (`fr`, `de-DE`, `pt_BR`, `zh-Hant-TW`): a 2–3 letter
/// language, then subtags of 1–8 letters or digits, joined by `-` (or `_`), at most 35 in all.
static LOCALE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$").expect("valid pattern")
});

pub fn is_valid_locale(locale: &str) -> bool {
    locale.len() <= 35 && LOCALE.is_match(locale)
}

impl Lang {
    /// The best language for `locale`: the full tag's language if we have it, else English.
    pub fn negotiate(locale: &str) -> Lang {
        let primary = locale
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "de" => Lang::De,
            "fr" => Lang::Fr,
            "es" => Lang::Es,
            _ => Lang::En,
        }
    }

    /// The value of the page's `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Es => "es",
        }
    }

    pub fn number_format(self) -> NumberFormat {
        match self {
            Lang::En => NumberFormat {
                decimal: ".",
                group: ",",
                symbol_first: true,
            },
            Lang::De | Lang::Es => NumberFormat {
                decimal: ",",
                group: ".",
                symbol_first: false,
            },
            Lang::Fr => NumberFormat {
                decimal: ",",
                group: "\u{202f}",
                symbol_first: false,
            },
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
            Lang::Fr => &FR,
            Lang::Es => &ES,
        }
    }

    /// "every month", "every 3 months", "every year"...
    pub fn interval(self, unit: &str, count: i32) -> String {
        let t = self.texts();
        let (one, many) = if unit == "year" {
            (t.every_year, t.every_n_years)
        } else {
            (t.every_month, t.every_n_months)
        };
        if count == 1 {
            one.to_string()
        } else {
            many.replace("{n}", &count.to_string())
        }
    }
}

/// Every text the pages show, per language. `{n}`, `{plan}`, `{date}`, `{code}` are placeholders.
pub struct Texts {
    pub test_mode: &'static str,
    pub checkout_title: &'static str,
    pub account: &'static str,
    pub every_month: &'static str,
    pub every_n_months: &'static str,
    pub every_year: &'static str,
    pub every_n_years: &'static str,
    pub trial: &'static str,
    pub promo: &'static str,
    pub regular_price: &'static str,
    pub due_today: &'static str,
    pub then: &'static str,
    pub card_number: &'static str,
    pub card_expiry: &'static str,
    pub card_cvc: &'static str,
    pub pay: &'static str,
    pub start_trial: &'static str,
    pub back_to_app: &'static str,
    pub sandbox_cards: &'static str,
    pub declined: &'static str,
    pub invalid_card: &'static str,
    pub promo_exhausted: &'static str,
    pub already_subscribed: &'static str,
    pub in_progress: &'static str,
    pub expired_title: &'static str,
    pub expired_body: &'static str,
    pub not_found_title: &'static str,
    pub used_title: &'static str,
    pub used_body: &'static str,
    pub activating_title: &'static str,
    pub activating_body: &'static str,
    pub continue_: &'static str,
    pub portal_title: &'static str,
    pub no_subscriptions: &'static str,
    pub status_trialing: &'static str,
    pub status_active: &'static str,
    pub status_past_due: &'static str,
    pub past_due_detail: &'static str,
    pub next_charge: &'static str,
    pub plan_change: &'static str,
    pub resume: &'static str,
    pub resumed_ok: &'static str,
    pub replace_card: &'static str,
    pub card_replaced: &'static str,
    pub save_card: &'static str,
    pub promo_then: &'static str,
    pub switch_title: &'static str,
    pub switch_body: &'static str,
    pub switch_button: &'static str,
    pub status_canceled: &'static str,
    pub status_ended: &'static str,
    pub paid_until: &'static str,
    pub trial_ends: &'static str,
    pub access_until: &'static str,
    pub cancel_subscription: &'static str,
    pub canceled_ok: &'static str,
    pub cancel_failed: &'static str,
    pub payment_method: &'static str,
    pub payments: &'static str,
    pub no_payments: &'static str,
    pub date: &'static str,
    pub amount: &'static str,
    pub status: &'static str,
    pub paid: &'static str,
    pub payment_declined: &'static str,
    pub error_title: &'static str,
    pub error_body: &'static str,
    pub card: &'static str,
    pub authenticate_title: &'static str,
    pub authenticate_body: &'static str,
    pub confirm_payment: &'static str,
    pub confirm_payment_needed: &'static str,
    pub payment_confirmed: &'static str,
    pub refunded: &'static str,
    pub partially_refunded: &'static str,
    pub disputed: &'static str,
    pub too_many_attempts: &'static str,
}

static EN: Texts = Texts {
    test_mode: "Test mode: no real payment is taken.",
    checkout_title: "Subscribe to {plan}",
    account: "Account",
    every_month: "every month",
    every_n_months: "every {n} months",
    every_year: "every year",
    every_n_years: "every {n} years",
    trial: "{n}-day free trial",
    promo: "Promo code {code}",
    regular_price: "Regular price",
    due_today: "Due today",
    then: "Then",
    card_number: "Card number",
    card_expiry: "Expiry (MM/YY)",
    card_cvc: "CVC",
    pay: "Pay and subscribe",
    start_trial: "Start free trial",
    back_to_app: "Cancel and go back",
    sandbox_cards: "Test cards: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined.",
    declined: "Your card was declined. No payment was taken; please try another card.",
    invalid_card: "Please check the card details.",
    promo_exhausted: "This promo code can no longer be used. No payment was taken.",
    already_subscribed: "You already have a subscription. No payment was taken.",
    in_progress: "This payment is already being processed. Please wait a moment and reload.",
    expired_title: "This link has expired",
    expired_body: "Please go back to the app and start again.",
    not_found_title: "Link not found",
    used_title: "This checkout is complete",
    used_body: "This link has already been used. Go back to the app to see your subscription.",
    activating_title: "Payment received",
    activating_body: "We are activating your subscription. This page moves on by itself.",
    continue_: "Continue",
    portal_title: "Billing",
    no_subscriptions: "You have no subscriptions.",
    status_trialing: "Free trial",
    status_active: "Active",
    status_past_due: "Payment failed",
    past_due_detail:
        "Your last payment failed. We will try again until {date}; update your card to keep access.",
    next_charge: "Next charge: {amount} on {date}",
    plan_change: "Changes to {plan} on {date}",
    resume: "Resume subscription",
    resumed_ok: "Your subscription continues. It renews at the end of the period.",
    replace_card: "Replace card",
    card_replaced: "Your card was updated.",
    save_card: "Save card",
    promo_then: "From charge {n} on",
    switch_title: "Switch to {plan}",
    switch_body: "Your current plan {current} continues until {date}. Then {plan} starts at {price}. Nothing is charged today.",
    switch_button: "Confirm the switch",
    status_canceled: "Canceled",
    status_ended: "Ended",
    paid_until: "Paid until {date}",
    trial_ends: "Trial ends {date}",
    access_until: "Canceled: access until {date}",
    cancel_subscription: "Cancel subscription",
    canceled_ok: "Your subscription is canceled. You keep access until the end of the paid period.",
    cancel_failed:
        "We could not cancel your subscription right now. Nothing was changed; please try again.",
    payment_method: "Payment method",
    payments: "Payments",
    no_payments: "No payments yet.",
    date: "Date",
    amount: "Amount",
    status: "Status",
    paid: "Paid",
    payment_declined: "Declined",
    error_title: "Something went wrong",
    error_body: "Nothing was charged twice. Please try again in a moment.",
    card: "Card",
    authenticate_title: "Confirm your payment",
    authenticate_body: "Your bank asks you to confirm this payment. Follow the steps in the window that opens.",
    confirm_payment: "Confirm your payment",
    confirm_payment_needed: "Your bank asks you to confirm the last payment of your subscription.",
    payment_confirmed: "Thank you: the payment is confirmed. Your subscription continues.",
    refunded: "Refunded",
    partially_refunded: "Partly refunded",
    disputed: "Disputed",
    too_many_attempts: "This link has had too many failed payment attempts and can no longer be used. Please go back to the app and start again.",
};

static DE: Texts = Texts {
    test_mode: "Testmodus: Es wird keine echte Zahlung ausgeführt.",
    checkout_title: "{plan} abonnieren",
    account: "Konto",
    every_month: "monatlich",
    every_n_months: "alle {n} Monate",
    every_year: "jährlich",
    every_n_years: "alle {n} Jahre",
    trial: "{n} Tage kostenlos testen",
    promo: "Aktionscode {code}",
    regular_price: "Regulärer Preis",
    due_today: "Heute fällig",
    then: "Danach",
    card_number: "Kartennummer",
    card_expiry: "Gültig bis (MM/JJ)",
    card_cvc: "Prüfnummer",
    pay: "Bezahlen und abonnieren",
    start_trial: "Kostenlos testen",
    back_to_app: "Abbrechen und zurück",
    sandbox_cards: "Testkarten: 4242 4242 4242 4242 zahlt, 4000 0000 0000 0002 wird abgelehnt.",
    declined: "Ihre Karte wurde abgelehnt. Es wurde nichts abgebucht; bitte versuchen Sie eine andere Karte.",
    invalid_card: "Bitte prüfen Sie die Kartendaten.",
    promo_exhausted: "Dieser Aktionscode kann nicht mehr verwendet werden. Es wurde nichts abgebucht.",
    already_subscribed: "Sie haben bereits ein Abonnement. Es wurde nichts abgebucht.",
    in_progress: "Diese Zahlung wird bereits verarbeitet. Bitte warten Sie kurz und laden Sie neu.",
    expired_title: "Dieser Link ist abgelaufen",
    expired_body: "Bitte kehren Sie zur App zurück und beginnen Sie erneut.",
    not_found_title: "Link nicht gefunden",
    used_title: "Dieser Bezahlvorgang ist abgeschlossen",
    used_body: "Dieser Link wurde bereits verwendet. In der App sehen Sie Ihr Abonnement.",
    activating_title: "Zahlung erhalten",
    activating_body: "Wir aktivieren Ihr Abonnement. Diese Seite geht von selbst weiter.",
    continue_: "Weiter",
    portal_title: "Abrechnung",
    no_subscriptions: "Sie haben keine Abonnements.",
    status_trialing: "Testphase",
    status_active: "Aktiv",
    status_past_due: "Zahlung fehlgeschlagen",
    past_due_detail: "Ihre letzte Zahlung ist fehlgeschlagen. Wir versuchen es bis {date} erneut; aktualisieren Sie Ihre Karte, um den Zugang zu behalten.",
    next_charge: "Nächste Abbuchung: {amount} am {date}",
    plan_change: "Wechsel zu {plan} am {date}",
    resume: "Abonnement fortsetzen",
    resumed_ok: "Ihr Abonnement läuft weiter und verlängert sich am Ende des Zeitraums.",
    replace_card: "Karte ersetzen",
    card_replaced: "Ihre Karte wurde aktualisiert.",
    save_card: "Karte speichern",
    promo_then: "Ab der {n}. Abbuchung",
    switch_title: "Wechsel zu {plan}",
    switch_body: "Ihr aktueller Tarif {current} läuft bis {date}. Danach beginnt {plan} zu {price}. Heute wird nichts abgebucht.",
    switch_button: "Wechsel bestätigen",
    status_canceled: "Gekündigt",
    status_ended: "Beendet",
    paid_until: "Bezahlt bis {date}",
    trial_ends: "Testphase endet am {date}",
    access_until: "Gekündigt: Zugang bis {date}",
    cancel_subscription: "Abonnement kündigen",
    canceled_ok: "Ihr Abonnement ist gekündigt. Sie behalten den Zugang bis zum Ende des bezahlten Zeitraums.",
    cancel_failed: "Die Kündigung ist gerade nicht möglich. Es wurde nichts geändert; bitte versuchen Sie es erneut.",
    payment_method: "Zahlungsmittel",
    payments: "Zahlungen",
    no_payments: "Noch keine Zahlungen.",
    date: "Datum",
    amount: "Betrag",
    status: "Status",
    paid: "Bezahlt",
    payment_declined: "Abgelehnt",
    error_title: "Etwas ist schiefgelaufen",
    error_body: "Es wurde nichts doppelt abgebucht. Bitte versuchen Sie es gleich noch einmal.",
    card: "Karte",
    authenticate_title: "Zahlung bestätigen",
    authenticate_body: "Ihre Bank bittet Sie, diese Zahlung zu bestätigen. Folgen Sie den Schritten im Fenster, das sich öffnet.",
    confirm_payment: "Zahlung bestätigen",
    confirm_payment_needed: "Ihre Bank bittet Sie, die letzte Zahlung Ihres Abonnements zu bestätigen.",
    payment_confirmed: "Danke: Die Zahlung ist bestätigt. Ihr Abonnement läuft weiter.",
    refunded: "Erstattet",
    partially_refunded: "Teilweise erstattet",
    disputed: "Angefochten",
    too_many_attempts: "Mit diesem Link gab es zu viele fehlgeschlagene Zahlungsversuche; er kann nicht mehr verwendet werden. Bitte kehren Sie zur App zurück und beginnen Sie neu.",
};

static FR: Texts = Texts {
    test_mode: "Mode test : aucun paiement réel n'est effectué.",
    checkout_title: "S'abonner à {plan}",
    account: "Compte",
    every_month: "chaque mois",
    every_n_months: "tous les {n} mois",
    every_year: "chaque année",
    every_n_years: "tous les {n} ans",
    trial: "Essai gratuit de {n} jours",
    promo: "Code promo {code}",
    regular_price: "Prix normal",
    due_today: "À payer aujourd'hui",
    then: "Ensuite",
    card_number: "Numéro de carte",
    card_expiry: "Expiration (MM/AA)",
    card_cvc: "Cryptogramme",
    pay: "Payer et s'abonner",
    start_trial: "Commencer l'essai gratuit",
    back_to_app: "Annuler et revenir",
    sandbox_cards: "Cartes de test : 4242 4242 4242 4242 paie, 4000 0000 0000 0002 est refusée.",
    declined:
        "Votre carte a été refusée. Aucun paiement n'a été effectué ; essayez une autre carte.",
    invalid_card: "Veuillez vérifier les informations de la carte.",
    promo_exhausted: "Ce code promo n'est plus utilisable. Aucun paiement n'a été effectué.",
    already_subscribed: "Vous avez déjà un abonnement. Aucun paiement n'a été effectué.",
    in_progress: "Ce paiement est déjà en cours. Patientez un instant puis rechargez la page.",
    expired_title: "Ce lien a expiré",
    expired_body: "Revenez dans l'application et recommencez.",
    not_found_title: "Lien introuvable",
    used_title: "Ce paiement est terminé",
    used_body: "Ce lien a déjà été utilisé. Revenez dans l'application pour voir votre abonnement.",
    activating_title: "Paiement reçu",
    activating_body: "Nous activons votre abonnement. Cette page avancera d'elle-même.",
    continue_: "Continuer",
    portal_title: "Facturation",
    no_subscriptions: "Vous n'avez aucun abonnement.",
    status_trialing: "Essai gratuit",
    status_active: "Actif",
    status_past_due: "Paiement échoué",
    past_due_detail: "Votre dernier paiement a échoué. Nous réessaierons jusqu'au {date} ; mettez à jour votre carte pour garder l'accès.",
    next_charge: "Prochain prélèvement : {amount} le {date}",
    plan_change: "Passage à {plan} le {date}",
    resume: "Reprendre l'abonnement",
    resumed_ok: "Votre abonnement continue et se renouvellera à la fin de la période.",
    replace_card: "Remplacer la carte",
    card_replaced: "Votre carte a été mise à jour.",
    save_card: "Enregistrer la carte",
    promo_then: "À partir du prélèvement {n}",
    switch_title: "Passer à {plan}",
    switch_body: "Votre formule actuelle {current} continue jusqu'au {date}. Ensuite {plan} commence à {price}. Rien n'est débité aujourd'hui.",
    switch_button: "Confirmer le changement",
    status_canceled: "Résilié",
    status_ended: "Terminé",
    paid_until: "Payé jusqu'au {date}",
    trial_ends: "L'essai se termine le {date}",
    access_until: "Résilié : accès jusqu'au {date}",
    cancel_subscription: "Résilier l'abonnement",
    canceled_ok:
        "Votre abonnement est résilié. Vous gardez l'accès jusqu'à la fin de la période payée.",
    cancel_failed:
        "La résiliation est impossible pour le moment. Rien n'a été modifié ; réessayez.",
    payment_method: "Moyen de paiement",
    payments: "Paiements",
    no_payments: "Aucun paiement pour l'instant.",
    date: "Date",
    amount: "Montant",
    status: "Statut",
    paid: "Payé",
    payment_declined: "Refusé",
    error_title: "Un problème est survenu",
    error_body: "Rien n'a été débité deux fois. Réessayez dans un instant.",
    card: "Carte",
    authenticate_title: "Confirmez votre paiement",
    authenticate_body: "Votre banque vous demande de confirmer ce paiement. Suivez les étapes dans la fenêtre qui s’ouvre.",
    confirm_payment: "Confirmer le paiement",
    confirm_payment_needed: "Votre banque vous demande de confirmer le dernier paiement de votre abonnement.",
    payment_confirmed: "Merci : le paiement est confirmé. Votre abonnement continue.",
    refunded: "Remboursé",
    partially_refunded: "Partiellement remboursé",
    disputed: "Contesté",
    too_many_attempts: "Ce lien a connu trop de tentatives de paiement échouées et ne peut plus être utilisé. Revenez à l'application et recommencez.",
};

static ES: Texts = Texts {
    test_mode: "Modo de prueba: no se realiza ningún pago real.",
    checkout_title: "Suscribirse a {plan}",
    account: "Cuenta",
    every_month: "cada mes",
    every_n_months: "cada {n} meses",
    every_year: "cada año",
    every_n_years: "cada {n} años",
    trial: "Prueba gratuita de {n} días",
    promo: "Código promocional {code}",
    regular_price: "Precio normal",
    due_today: "A pagar hoy",
    then: "Después",
    card_number: "Número de tarjeta",
    card_expiry: "Caducidad (MM/AA)",
    card_cvc: "CVC",
    pay: "Pagar y suscribirse",
    start_trial: "Empezar la prueba gratuita",
    back_to_app: "Cancelar y volver",
    sandbox_cards: "Tarjetas de prueba: 4242 4242 4242 4242 paga, 4000 0000 0000 0002 se rechaza.",
    declined: "Su tarjeta fue rechazada. No se cobró nada; pruebe con otra tarjeta.",
    invalid_card: "Revise los datos de la tarjeta.",
    promo_exhausted: "Este código promocional ya no se puede usar. No se cobró nada.",
    already_subscribed: "Ya tiene una suscripción. No se cobró nada.",
    in_progress: "Este pago ya se está procesando. Espere un momento y recargue.",
    expired_title: "Este enlace ha caducado",
    expired_body: "Vuelva a la aplicación y empiece de nuevo.",
    not_found_title: "Enlace no encontrado",
    used_title: "Este pago está completo",
    used_body: "Este enlace ya se usó. Vuelva a la aplicación para ver su suscripción.",
    activating_title: "Pago recibido",
    activating_body: "Estamos activando su suscripción. Esta página avanzará sola.",
    continue_: "Continuar",
    portal_title: "Facturación",
    no_subscriptions: "No tiene suscripciones.",
    status_trialing: "Prueba gratuita",
    status_active: "Activa",
    status_past_due: "Pago fallido",
    past_due_detail: "Su último pago falló. Lo intentaremos de nuevo hasta el {date}; actualice su tarjeta para mantener el acceso.",
    next_charge: "Próximo cargo: {amount} el {date}",
    plan_change: "Cambia a {plan} el {date}",
    resume: "Reanudar suscripción",
    resumed_ok: "Su suscripción continúa y se renovará al final del periodo.",
    replace_card: "Sustituir tarjeta",
    card_replaced: "Su tarjeta se actualizó.",
    save_card: "Guardar tarjeta",
    promo_then: "A partir del cargo {n}",
    switch_title: "Cambiar a {plan}",
    switch_body: "Su plan actual {current} continúa hasta el {date}. Después empieza {plan} por {price}. Hoy no se cobra nada.",
    switch_button: "Confirmar el cambio",
    status_canceled: "Cancelada",
    status_ended: "Finalizada",
    paid_until: "Pagado hasta el {date}",
    trial_ends: "La prueba termina el {date}",
    access_until: "Cancelada: acceso hasta el {date}",
    cancel_subscription: "Cancelar suscripción",
    canceled_ok:
        "Su suscripción está cancelada. Mantiene el acceso hasta el final del periodo pagado.",
    cancel_failed:
        "No pudimos cancelar su suscripción ahora. No se cambió nada; inténtelo de nuevo.",
    payment_method: "Método de pago",
    payments: "Pagos",
    no_payments: "Todavía no hay pagos.",
    date: "Fecha",
    amount: "Importe",
    status: "Estado",
    paid: "Pagado",
    payment_declined: "Rechazado",
    error_title: "Algo salió mal",
    error_body: "No se cobró nada dos veces. Inténtelo de nuevo en un momento.",
    card: "Tarjeta",
    authenticate_title: "Confirme su pago",
    authenticate_body: "Su banco le pide que confirme este pago. Siga los pasos en la ventana que se abre.",
    confirm_payment: "Confirmar el pago",
    confirm_payment_needed: "Su banco le pide que confirme el último pago de su suscripción.",
    payment_confirmed: "Gracias: el pago está confirmado. Su suscripción continúa.",
    refunded: "Reembolsado",
    partially_refunded: "Reembolsado en parte",
    disputed: "Disputado",
    too_many_attempts: "Este enlace ha tenido demasiados intentos de pago fallidos y ya no se puede usar. Vuelva a la aplicación y empiece de nuevo.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_falls_back_from_region_to_language_to_english() {
        assert_eq!(Lang::negotiate("de-DE"), Lang::De);
        assert_eq!(Lang::negotiate("de_AT"), Lang::De);
        assert_eq!(Lang::negotiate("FR"), Lang::Fr);
        assert_eq!(Lang::negotiate("pt-BR"), Lang::En);
        assert_eq!(Lang::negotiate(""), Lang::En);
    }

    #[test]
    fn intervals_read_naturally() {
        assert_eq!(Lang::En.interval("month", 1), "every month");
        assert_eq!(Lang::En.interval("month", 3), "every 3 months");
        assert_eq!(Lang::De.interval("year", 2), "alle 2 Jahre");
    }

    #[test]
    fn locales_are_checked() {
        assert!(is_valid_locale("de-DE"));
        assert!(!is_valid_locale(""));
        assert!(!is_valid_locale("de DE<script>"));
    }
}
