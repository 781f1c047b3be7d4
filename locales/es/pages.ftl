# Español — shopper pages of treefort-webpay

## Page chrome

language-name = Español
skip-to-content = Saltar al contenido
test-mode = Modo de prueba: no se realiza ningún pago real.

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { ": " }

## Checkout

checkout-title = Suscribirse a { $plan }
account = Cuenta
every-month =
    { $n ->
        [one] cada mes
       *[other] cada { $n } meses
    }
every-year =
    { $n ->
        [one] cada año
       *[other] cada { $n } años
    }
trial =
    { $n ->
        [one] Prueba gratuita de { $n } día
       *[other] Prueba gratuita de { $n } días
    }
promo = Código promocional { $code }
regular-price = Precio normal
due-today = A pagar hoy
amount-due-label = Importe a pagar
then = Después
card-details = Datos de la tarjeta
card-number = Número de tarjeta
card-expiry = Caducidad (MM/AA)
card-expiry-placeholder = MM/AA
card-cvc = CVC
secure-note = Los datos de su tarjeta van directamente al proveedor de pagos; este sitio nunca los ve.
pay = Pagar y suscribirse
start-trial = Empezar la prueba gratuita
back-to-app = Cancelar y volver
sandbox-cards = Tarjetas de prueba: 4242 4242 4242 4242 paga, 4000 0000 0000 0002 se rechaza.
declined = Su tarjeta fue rechazada. No se cobró nada; pruebe con otra tarjeta.
invalid-card = Revise los datos de la tarjeta.
promo-exhausted = Este código promocional ya no se puede usar. No se cobró nada.
already-subscribed = Ya tiene una suscripción. No se cobró nada.
in-progress = Este pago ya se está procesando. Espere un momento y recargue.
expired-title = Este enlace ha caducado
expired-body = Vuelva a la aplicación y empiece de nuevo.
not-found-title = Enlace no encontrado
used-title = Este pago está completo
used-body = Este enlace ya se usó. Vuelva a la aplicación para ver su suscripción.
activating-title = Pago recibido
activating-body = Estamos activando su suscripción. Esta página avanzará sola.
continue = Continuar

## Billing portal

portal-title = Facturación
no-subscriptions = No tiene suscripciones.
status-trialing = Prueba gratuita
status-active = Activa
status-past-due = Pago fallido
past-due-detail = Su último pago falló. Lo intentaremos de nuevo hasta el { $date }; actualice su tarjeta para mantener el acceso.
next-charge = Próximo cargo: { $amount } el { $date }
plan-change = Cambia a { $plan } el { $date }
resume = Reanudar suscripción
resumed-ok = Su suscripción continúa y se renovará al final del periodo.
replace-card = Sustituir tarjeta
card-replaced = Su tarjeta se actualizó.
save-card = Guardar tarjeta
promo-then = A partir del cargo { $n }
switch-title = Cambiar a { $plan }
switch-body = Su plan actual { $current } continúa hasta el { $date }. Después empieza { $plan } por { $price }. Hoy no se cobra nada.
switch-button = Confirmar el cambio
status-canceled = Cancelada
status-ended = Finalizada
paid-until = Pagado hasta el { $date }
trial-ends = La prueba termina el { $date }
access-until = Cancelada: acceso hasta el { $date }
cancel-subscription = Cancelar suscripción
canceled-ok = Su suscripción está cancelada. Mantiene el acceso hasta el final del periodo pagado.
cancel-failed = No pudimos cancelar su suscripción ahora. No se cambió nada; inténtelo de nuevo.
payment-method = Método de pago
payments = Pagos
no-payments = Todavía no hay pagos.
date = Fecha
amount = Importe
status = Estado
paid = Pagado
payment-declined = Rechazado
error-title = Algo salió mal
error-body = No se cobró nada dos veces. Inténtelo de nuevo en un momento.
card = Tarjeta
authenticate-title = Confirme su pago
authenticate-body = Su banco le pide que confirme este pago. Siga los pasos en la ventana que se abre.
confirm-payment = Confirmar el pago
confirm-payment-needed = Su banco le pide que confirme el último pago de su suscripción.
payment-confirmed = Gracias: el pago está confirmado. Su suscripción continúa.
refunded = Reembolsado
partially-refunded = Reembolsado en parte
disputed = Disputado
too-many-attempts = Este enlace ha tenido demasiados intentos de pago fallidos y ya no se puede usar. Vuelva a la aplicación y empiece de nuevo.

## Refusals

too-many-requests = Demasiadas solicitudes desde su red. Espere un momento y vuelva a intentarlo.
cross-site = Este formulario se envió desde otro sitio, así que no se hizo nada. Vuelva a abrir el enlace desde la aplicación.
