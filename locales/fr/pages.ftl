# Français — shopper pages of treefort-webpay

## Page chrome

language-name = Français
skip-to-content = Aller au contenu
test-mode = Mode test : aucun paiement réel n'est effectué.

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { "\u00A0: " }

## Checkout

checkout-title = S'abonner à { $plan }
account = Compte
every-month =
    { $n ->
        [one] chaque mois
       *[other] tous les { $n } mois
    }
every-year =
    { $n ->
        [one] chaque année
       *[other] tous les { $n } ans
    }
trial =
    { $n ->
        [one] Essai gratuit de { $n } jour
       *[other] Essai gratuit de { $n } jours
    }
promo = Code promo { $code }
regular-price = Prix normal
due-today = À payer aujourd'hui
amount-due-label = Montant dû
then = Ensuite
card-details = Informations de la carte
card-number = Numéro de carte
card-expiry = Expiration (MM/AA)
card-expiry-placeholder = MM/AA
card-cvc = Cryptogramme
secure-note = Les informations de votre carte sont transmises directement au prestataire de paiement ; ce site ne les voit jamais.
pay = Payer et s'abonner
start-trial = Commencer l'essai gratuit
back-to-app = Annuler et revenir
sandbox-cards = Cartes de test : 4242 4242 4242 4242 paie, 4000 0000 0000 0002 est refusée.
declined = Votre carte a été refusée. Aucun paiement n'a été effectué ; essayez une autre carte.
invalid-card = Veuillez vérifier les informations de la carte.
promo-exhausted = Ce code promo n'est plus utilisable. Aucun paiement n'a été effectué.
already-subscribed = Vous avez déjà un abonnement. Aucun paiement n'a été effectué.
in-progress = Ce paiement est déjà en cours. Patientez un instant puis rechargez la page.
expired-title = Ce lien a expiré
expired-body = Revenez dans l'application et recommencez.
not-found-title = Lien introuvable
used-title = Ce paiement est terminé
used-body = Ce lien a déjà été utilisé. Revenez dans l'application pour voir votre abonnement.
activating-title = Paiement reçu
activating-body = Nous activons votre abonnement. Cette page avancera d'elle-même.
continue = Continuer

## Billing portal

portal-title = Facturation
no-subscriptions = Vous n'avez aucun abonnement.
status-trialing = Essai gratuit
status-active = Actif
status-past-due = Paiement échoué
past-due-detail = Votre dernier paiement a échoué. Nous réessaierons jusqu'au { $date } ; mettez à jour votre carte pour garder l'accès.
next-charge = Prochain prélèvement : { $amount } le { $date }
plan-change = Passage à { $plan } le { $date }
resume = Reprendre l'abonnement
resumed-ok = Votre abonnement continue et se renouvellera à la fin de la période.
replace-card = Remplacer la carte
card-replaced = Votre carte a été mise à jour.
save-card = Enregistrer la carte
promo-then = À partir du prélèvement { $n }
switch-title = Passer à { $plan }
switch-body = Votre formule actuelle { $current } continue jusqu'au { $date }. Ensuite { $plan } commence à { $price }. Rien n'est débité aujourd'hui.
switch-button = Confirmer le changement
status-canceled = Résilié
status-ended = Terminé
paid-until = Payé jusqu'au { $date }
trial-ends = L'essai se termine le { $date }
access-until = Résilié : accès jusqu'au { $date }
cancel-subscription = Résilier l'abonnement
canceled-ok = Votre abonnement est résilié. Vous gardez l'accès jusqu'à la fin de la période payée.
cancel-failed = La résiliation est impossible pour le moment. Rien n'a été modifié ; réessayez.
payment-method = Moyen de paiement
payments = Paiements
no-payments = Aucun paiement pour l'instant.
date = Date
amount = Montant
status = Statut
paid = Payé
payment-declined = Refusé
error-title = Un problème est survenu
error-body = Rien n'a été débité deux fois. Réessayez dans un instant.
card = Carte
authenticate-title = Confirmez votre paiement
authenticate-body = Votre banque vous demande de confirmer ce paiement. Suivez les étapes dans la fenêtre qui s'ouvre.
confirm-payment = Confirmer le paiement
confirm-payment-needed = Votre banque vous demande de confirmer le dernier paiement de votre abonnement.
payment-confirmed = Merci : le paiement est confirmé. Votre abonnement continue.
refunded = Remboursé
partially-refunded = Partiellement remboursé
disputed = Contesté
too-many-attempts = Ce lien a connu trop de tentatives de paiement échouées et ne peut plus être utilisé. Revenez à l'application et recommencez.

## Refusals

too-many-requests = Trop de requêtes depuis votre réseau. Veuillez patienter un instant et réessayer.
cross-site = Ce formulaire a été envoyé depuis un autre site : rien n'a été fait. Rouvrez le lien depuis l'application.
