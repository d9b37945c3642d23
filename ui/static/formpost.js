// Submits the response_mode=form_post form of oauthd as soon as the page is
// parsed. Without JavaScript the page shows a Continue button instead.
"use strict";
(function () {
  function submit() {
    var form = document.forms[0];
    if (form) {
      // Not form.submit(): a field named "submit" (a relayed request may
      // carry one) would hide the method.
      HTMLFormElement.prototype.submit.call(form);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", submit);
  } else {
    submit();
  }
})();
