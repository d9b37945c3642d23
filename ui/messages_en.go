package ui

// messagesEN are the English messages, the reference every other language
// translates.
var messagesEN = map[string]string{
	"signed_in_as": "Signed in as %s.",

	"login.title":                     "Sign in",
	"login.continue_to":               "to continue to %s",
	"login.username":                  "Username",
	"login.password":                  "Password",
	"login.submit":                    "Sign in",
	"login.error.invalid_credentials": "Incorrect username or password.",
	"login.error.too_many_attempts":   "Too many attempts. Wait a moment and try again.",
	"login.error.generic":             "Sign-in failed. Try again.",

	"consent.title":          "%s would like permissions",
	"consent.unknown_client": "An application",
	"consent.intro":          "This will allow %s to:",
	"consent.no_scopes":      "It does not ask for access to any of your information.",
	"consent.not_you":        "Not you?",
	"consent.remember":       "Remember my approval",
	"consent.approve":        "Approve",
	"consent.deny":           "Deny",

	"scope.openid":         "Confirm your identity (your account ID)",
	"scope.profile":        "See your profile: name, picture and preferred language",
	"scope.email":          "See your email address",
	"scope.address":        "See your postal address",
	"scope.phone":          "See your phone number",
	"scope.offline_access": "Stay connected when you are not using the app",

	"error.title":      "Something went wrong",
	"error.details":    "Details",
	"error.code_label": "Error code: %s",
	"error.request_id": "Request ID: %s",
	"error.generic":    "The application's request could not be completed.",
	"error.hint":       "If this keeps happening, tell the application's support and give them the request ID below.",

	"error.code.unknown_client":            "This application is not known.",
	"error.code.invalid_redirect_uri":      "The address this application asked to return to is not registered.",
	"error.code.request_expired":           "This sign-in request has expired or was already used. Go back to the application and start again.",
	"error.code.not_found":                 "This page does not exist.",
	"error.code.method_not_allowed":        "This page cannot be used this way.",
	"error.code.bad_request":               "The request was not valid.",
	"error.code.server_error":              "Something went wrong on our side. Try again in a moment.",
	"error.code.too_many_requests":         "Too many requests. Wait a moment and try again.",
	"error.code.temporarily_unavailable":   "The service is temporarily unavailable. Try again in a few minutes.",
	"error.code.access_denied":             "Access was denied.",
	"error.code.invalid_request":           "The application sent a request that is not valid.",
	"error.code.invalid_scope":             "The application asked for permissions it may not have.",
	"error.code.unauthorized_client":       "This application is not allowed to make this request.",
	"error.code.unsupported_response_type": "The application asked for a kind of answer this server does not give.",

	"formpost.title":    "Returning to the application",
	"formpost.text":     "Returning you to the application…",
	"formpost.noscript": "Select Continue to return to the application.",
	"formpost.continue": "Continue",
	"relay.title":       "One moment",
	"relay.text":        "Continuing…",
	"relay.noscript":    "Select Continue to go on.",

	"home.title":    "Signed in",
	"home.hello":    "Hello, %s",
	"home.text":     "You are signed in to %s.",
	"home.sign_out": "Sign out",

	"logout.title":     "Sign out of %s?",
	"logout.client":    "%s asked to sign you out.",
	"logout.confirm":   "Sign out",
	"logout.cancel":    "Stay signed in",
	"logout.done":      "You are signed out",
	"logout.done_text": "You can close this page.",
}
