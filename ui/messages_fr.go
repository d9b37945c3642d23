package ui

// messagesFR are the French messages. A no-break space (\u00a0) precedes
// the high punctuation marks, as French typography wants.
var messagesFR = map[string]string{
	"signed_in_as": "Connecté en tant que %s.",

	"login.title":                     "Connexion",
	"login.continue_to":               "pour continuer vers %s",
	"login.username":                  "Nom d’utilisateur",
	"login.password":                  "Mot de passe",
	"login.submit":                    "Se connecter",
	"login.error.invalid_credentials": "Nom d’utilisateur ou mot de passe incorrect.",
	"login.error.too_many_attempts":   "Trop de tentatives. Patientez un instant puis réessayez.",
	"login.error.generic":             "La connexion a échoué. Réessayez.",

	"consent.title":          "%s demande des autorisations",
	"consent.unknown_client": "Une application",
	"consent.intro":          "Cela permettra à %s de\u00a0:",
	"consent.no_scopes":      "Elle ne demande accès à aucune de vos informations.",
	"consent.not_you":        "Ce n’est pas vous\u00a0?",
	"consent.remember":       "Mémoriser mon accord",
	"consent.approve":        "Autoriser",
	"consent.deny":           "Refuser",

	"scope.openid":         "Confirmer votre identité (l’identifiant de votre compte)",
	"scope.profile":        "Voir votre profil\u00a0: nom, photo et langue préférée",
	"scope.email":          "Voir votre adresse e-mail",
	"scope.address":        "Voir votre adresse postale",
	"scope.phone":          "Voir votre numéro de téléphone",
	"scope.offline_access": "Garder l’accès lorsque vous n’utilisez pas l’application",

	"error.title":      "Un problème est survenu",
	"error.details":    "Détails",
	"error.code_label": "Code d’erreur\u00a0: %s",
	"error.request_id": "Identifiant de requête\u00a0: %s",
	"error.generic":    "La demande de l’application n’a pas pu aboutir.",
	"error.hint":       "Si le problème persiste, prévenez l’assistance de l’application en indiquant l’identifiant de requête ci-dessous.",

	"error.code.unknown_client":            "Cette application est inconnue.",
	"error.code.invalid_redirect_uri":      "L’adresse de retour demandée par cette application n’est pas enregistrée.",
	"error.code.request_expired":           "Cette demande de connexion a expiré ou a déjà été utilisée. Revenez à l’application et recommencez.",
	"error.code.not_found":                 "Cette page n’existe pas.",
	"error.code.method_not_allowed":        "Cette page ne peut pas être utilisée de cette façon.",
	"error.code.bad_request":               "La requête n’est pas valide.",
	"error.code.server_error":              "Un problème est survenu de notre côté. Réessayez dans un instant.",
	"error.code.too_many_requests":         "Trop de requêtes. Patientez un instant puis réessayez.",
	"error.code.temporarily_unavailable":   "Le service est momentanément indisponible. Réessayez dans quelques minutes.",
	"error.code.access_denied":             "L’accès a été refusé.",
	"error.code.invalid_request":           "L’application a envoyé une requête qui n’est pas valide.",
	"error.code.invalid_scope":             "L’application a demandé des autorisations auxquelles elle n’a pas droit.",
	"error.code.unauthorized_client":       "Cette application n’a pas le droit de faire cette demande.",
	"error.code.unsupported_response_type": "L’application a demandé un type de réponse que ce serveur ne fournit pas.",

	"formpost.title":    "Retour à l’application",
	"formpost.text":     "Retour à l’application…",
	"formpost.noscript": "Sélectionnez Continuer pour revenir à l’application.",
	"formpost.continue": "Continuer",
	"relay.title":       "Un instant",
	"relay.text":        "Un instant…",
	"relay.noscript":    "Sélectionnez Continuer pour poursuivre.",

	"home.title":    "Session ouverte",
	"home.hello":    "Bonjour %s",
	"home.text":     "Votre session est ouverte sur %s.",
	"home.sign_out": "Se déconnecter",

	"logout.title":     "Se déconnecter de %s\u00a0?",
	"logout.client":    "%s demande à vous déconnecter.",
	"logout.confirm":   "Se déconnecter",
	"logout.cancel":    "Rester connecté",
	"logout.done":      "Votre session est fermée",
	"logout.done_text": "Vous pouvez fermer cette page.",
}
