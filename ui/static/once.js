// Sends the consent and sign-out forms of oauthd once: a second click of
// Approve (or of Deny after Approve) while the first answer is on its way
// would otherwise cancel that navigation and post a decision the server has
// already taken, which it must refuse, leaving the person on an error page
// and the application without its answer. The buttons are not disabled, so
// the clicked one still sends its value; the page works without JavaScript.
"use strict";
(function () {
  function guard(form) {
    form.addEventListener("submit", function (e) {
      if (form.getAttribute("data-sent")) {
        e.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "1");
      var buttons = form.querySelectorAll("button");
      for (var i = 0; i < buttons.length; i++) {
        buttons[i].setAttribute("aria-disabled", "true");
      }
    });
  }
  function reset() {
    var forms = document.querySelectorAll("form[data-sent]");
    for (var i = 0; i < forms.length; i++) {
      forms[i].removeAttribute("data-sent");
      var buttons = forms[i].querySelectorAll("button");
      for (var j = 0; j < buttons.length; j++) {
        buttons[j].removeAttribute("aria-disabled");
      }
    }
  }
  function start() {
    var forms = document.querySelectorAll("form[method=post]");
    for (var i = 0; i < forms.length; i++) {
      guard(forms[i]);
    }
  }
  // A page shown again from the back-forward cache may be sent again.
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) {
      reset();
    }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
