# Português (Brasil) — shopper pages of treefort-webpay

## Page chrome

language-name = Português (Brasil)
skip-to-content = Pular para o conteúdo
test-mode = Modo de teste: nenhum pagamento real é feito.

# Between a label and its value ("Account: …"); French puts a no-break space before it.
label-separator = { ": " }

## Checkout

checkout-title = Assinar { $plan }
account = Conta
every-month =
    { $n ->
        [one] por mês
       *[other] a cada { $n } meses
    }
every-year =
    { $n ->
        [one] por ano
       *[other] a cada { $n } anos
    }
trial =
    { $n ->
        [one] Teste grátis de { $n } dia
       *[other] Teste grátis de { $n } dias
    }
promo = Cupom { $code }
regular-price = Preço normal
due-today = A pagar hoje
amount-due-label = Valor a pagar
then = Depois
card-details = Dados do cartão
card-number = Número do cartão
card-expiry = Validade (MM/AA)
card-expiry-placeholder = MM/AA
card-cvc = CVV
secure-note = Os dados do seu cartão vão direto para o provedor de pagamentos; este site nunca tem acesso a eles.
pay = Pagar e assinar
start-trial = Começar teste grátis
back-to-app = Cancelar e voltar
sandbox-cards = Cartões de teste: 4242 4242 4242 4242 é aprovado, 4000 0000 0000 0002 é recusado.
declined = Seu cartão foi recusado. Nenhum valor foi cobrado; tente outro cartão.
invalid-card = Verifique os dados do cartão.
promo-exhausted = Este cupom não pode mais ser usado. Nenhum valor foi cobrado.
already-subscribed = Você já tem uma assinatura. Nenhum valor foi cobrado.
in-progress = Este pagamento já está sendo processado. Aguarde um momento e recarregue a página.
expired-title = Este link expirou
expired-body = Volte ao aplicativo e comece de novo.
not-found-title = Link não encontrado
used-title = Este pagamento foi concluído
used-body = Este link já foi usado. Volte ao aplicativo para ver sua assinatura.
activating-title = Pagamento recebido
activating-body = Estamos ativando sua assinatura. Esta página avançará sozinha.
continue = Continuar

## Billing portal

portal-title = Faturamento
no-subscriptions = Você não tem assinaturas.
status-trialing = Teste grátis
status-active = Ativa
status-past-due = Falha no pagamento
past-due-detail = Seu último pagamento falhou. Tentaremos novamente até { $date }; atualize seu cartão para manter o acesso.
next-charge = Próxima cobrança: { $amount } em { $date }
plan-change = Mudança para { $plan } em { $date }
resume = Retomar assinatura
resumed-ok = Sua assinatura continua e será renovada no fim do período.
replace-card = Trocar cartão
card-replaced = Seu cartão foi atualizado.
save-card = Salvar cartão
promo-then = A partir da { $n }ª cobrança
switch-title = Mudar para { $plan }
switch-body = Seu plano atual { $current } continua até { $date }. Depois, { $plan } começa por { $price }. Nada será cobrado hoje.
switch-button = Confirmar a mudança
status-canceled = Cancelada
status-ended = Encerrada
paid-until = Pago até { $date }
trial-ends = O teste termina em { $date }
access-until = Cancelada: acesso até { $date }
cancel-subscription = Cancelar assinatura
canceled-ok = Sua assinatura foi cancelada. Você mantém o acesso até o fim do período pago.
cancel-failed = Não foi possível cancelar sua assinatura agora. Nada foi alterado; tente novamente.
payment-method = Forma de pagamento
payments = Pagamentos
no-payments = Nenhum pagamento ainda.
date = Data
amount = Valor
status = Status
paid = Pago
payment-declined = Recusado
error-title = Algo deu errado
error-body = Nada foi cobrado em dobro. Tente novamente em instantes.
card = Cartão
authenticate-title = Confirme seu pagamento
authenticate-body = Seu banco pede que você confirme este pagamento. Siga as etapas na janela que vai abrir.
confirm-payment = Confirmar pagamento
confirm-payment-needed = Seu banco pede que você confirme o último pagamento da sua assinatura.
payment-confirmed = Obrigado: o pagamento foi confirmado. Sua assinatura continua.
refunded = Reembolsado
partially-refunded = Parcialmente reembolsado
disputed = Contestado
too-many-attempts = Houve tentativas de pagamento malsucedidas demais com este link, e ele não pode mais ser usado. Volte ao aplicativo e comece de novo.

## Refusals

too-many-requests = Muitas solicitações da sua rede. Aguarde um momento e tente novamente.
cross-site = Este formulário foi enviado de outro site, então nada foi feito. Abra o link novamente pelo aplicativo.
