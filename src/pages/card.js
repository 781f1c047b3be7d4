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

  // Asks our server for a card setup when the shopper presses the button (page views create
  // nothing at Stripe); the answer is Stripe's client secret, or a JSON refusal.
  function requestSetup(form) {
    return fetch(form.getAttribute('data-stripe-setup-url'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json' }
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok || !body || !body.clientSecret) {
          throw new Error((body && body.message) || form.getAttribute('data-error-text'));
        }
        return body.clientSecret;
      });
    });
  }

  // Saving a card: get a setup, confirmCardSetup with the card field, then post the SetupIntent
  // id. A setup the card was refused on is tried again with the next card; one is asked for
  // only once per page.
  Array.prototype.forEach.call(document.querySelectorAll('form[data-stripe-setup-url]'), function (form) {
    var stripe = Stripe(form.getAttribute('data-stripe-key'));
    var card = stripe.elements().create('card');
    card.mount(form.querySelector('[data-card-element]'));
    var busy = false;
    var secret = null;
    function fail(message) {
      busy = false;
      setBusy(form, false);
      showError(form, message || form.getAttribute('data-error-text'));
    }
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (busy) {
        return;
      }
      busy = true;
      setBusy(form, true);
      var ready = secret ? Promise.resolve(secret) : requestSetup(form);
      ready.then(function (clientSecret) {
        secret = clientSecret;
        return stripe.confirmCardSetup(clientSecret, { payment_method: { card: card } });
      }).then(function (result) {
        if (!result || result.error || !result.setupIntent) {
          fail(result && result.error && result.error.message);
          return;
        }
        form.querySelector('input[name=setup_intent]').value = result.setupIntent.id;
        form.submit();
      }, function (error) {
        fail(error && error.message);
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
