// Sends the sign-in, consent and sign-out forms of oauthd once: a second
// click of Approve (or of Deny after Approve) while the first answer is on
// its way would otherwise cancel that navigation and post a decision the
// server has already taken, which it must refuse, leaving the person on an
// error page and the application without its answer (and a double click of
// Sign in would count a wrong password twice). The buttons are not
// disabled, so the clicked one still sends its value; the page works
// without JavaScript.
//
// Enter on a checkbox ("Remember my approval") does not send the form: the
// browser would send it with its first button, Approve, when the person
// meant to tick the box. A page the browser shows again from its
// back-forward cache after its form was sent is loaded again, so that the
// server says where the request stands rather than offering a form it
// would refuse.
"use strict";
(function () {
  function guard(form) {
    // keydown and keypress: browsers send the form on either.
    var enterOnBox = function (e) {
      if (e.key === "Enter" && e.target && e.target.type === "checkbox") {
        e.preventDefault();
      }
    };
    form.addEventListener("keydown", enterOnBox);
    form.addEventListener("keypress", enterOnBox);
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
      // A sending stopped (Esc, a network failure that leaves the page)
      // must not leave the form dead: after a while it may be sent again.
      window.setTimeout(function () {
        form.removeAttribute("data-sent");
        for (var i = 0; i < buttons.length; i++) {
          buttons[i].removeAttribute("aria-disabled");
        }
      }, 10000);
    });
  }
  function start() {
    var forms = document.querySelectorAll("form[method=post]");
    for (var i = 0; i < forms.length; i++) {
      guard(forms[i]);
    }
  }
  // A page shown again from the back-forward cache whose form was sent is
  // loaded again: the server says where its request stands.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) {
      return;
    }
    if (document.querySelector("form[data-sent]")) {
      window.location.reload();
    }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
