package ui

// catalog holds the messages of every supported language, keyed by base
// language tag and then by message ID. A language is one file,
// messages_<tag>.go; English is complete and is the fallback of the others.
// The maps are never written after initialisation.
//
// Messages with arguments are fmt formats (use %[1]s to reorder); the
// templates escape the formatted text, arguments included.
var catalog = map[string]map[string]string{
	"en": messagesEN,
	"fr": messagesFR,
}
