// Card entry and 3-D Secure with Stripe.js, for the checkout page and the billing portal.
// The card number goes from Stripe's own field straight to Stripe; these forms post back only
// the id of what Stripe confirmed, and the server reads it back from Stripe before it counts.
(function () {
  'use strict';

  function showError(form, message) {
    var box = form.querySelector('[data-card-error]');
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  function setBusy(form, busy) {
    var button = form.querySelector('button[type=submit]');
    if (button) {
      button.disabled = busy;
    }
  }

  // Saving a card: confirmCardSetup with the card field, then post the SetupIntent id.
  Array.prototype.forEach.call(document.querySelectorAll('form[data-stripe-setup]'), function (form) {
    var stripe = Stripe(form.getAttribute('data-stripe-key'));
    var card = stripe.elements().create('card');
    card.mount(form.querySelector('[data-card-element]'));
    var busy = false;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (busy) {
        return;
      }
      busy = true;
      setBusy(form, true);
      stripe.confirmCardSetup(form.getAttribute('data-stripe-setup'), {
        payment_method: { card: card }
      }).then(function (result) {
        if (!result || result.error || !result.setupIntent) {
          busy = false;
          setBusy(form, false);
          showError(form, (result && result.error && result.error.message) || form.getAttribute('data-error-text'));
          return;
        }
        form.querySelector('input[name=setup_intent]').value = result.setupIntent.id;
        form.submit();
      }, function () {
        busy = false;
        setBusy(form, false);
        showError(form, form.getAttribute('data-error-text'));
      });
    });
  });

  // Authenticating a payment: confirmCardPayment, then post whatever happened; the server asks
  // Stripe how the payment stands.
  Array.prototype.forEach.call(document.querySelectorAll('form[data-stripe-payment]'), function (form) {
    var stripe = Stripe(form.getAttribute('data-stripe-key'));
    var started = false;
    function authenticate() {
      if (started) {
        return;
      }
      started = true;
      setBusy(form, true);
      var done = function () { form.submit(); };
      var card = form.getAttribute('data-payment-method');
      var data = card ? { payment_method: card } : undefined;
      stripe.confirmCardPayment(form.getAttribute('data-stripe-payment'), data).then(done, done);
    }
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      authenticate();
    });
    if (form.getAttribute('data-auto') === 'yes') {
      authenticate();
    }
  });
})();
