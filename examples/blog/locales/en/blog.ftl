# The blog example's English messages. The Spanish file has the same ids in the same order.

## Site

-site-name = Squall Blog
site-title = { -site-name }
site-tagline = Notes written in a storm
page-title = { $title } · { -site-name }

## Navigation

nav-home = Home
nav-write = Write
nav-login = Log in
nav-logout = Log out
nav-signup = Sign up
welcome-user = Welcome back, { $username }!

## Posts

post-count =
    { $count ->
        [one] { $count } post
       *[other] { $count } posts
    }
# $date is already formatted for the locale (Locale::format_date).
posted-by = Posted by { $author } on { $date }
post-read-more = Read more
post-empty = Nothing here yet. Be the first to write something!
post-not-found = This post does not exist.
post-image-alt = Image attached to “{ $title }”

## Forms

form-username = Username
form-password = Password
form-password-confirm = Confirm password
form-title = Title
form-body = Text
form-image = Image (optional)
form-submit-post = Publish
form-submit-login = Log in
form-submit-signup = Create account

## Errors

error-wrong-password = Wrong username or password.
error-username-taken = The username “{ $username }” is already taken.
error-username-invalid = Usernames have 3 to 32 letters, digits, hyphens or underscores.
error-password-short =
    { $min ->
        [one] Passwords need at least { $min } character.
       *[other] Passwords need at least { $min } characters.
    }
error-passwords-differ = The passwords do not match.
error-title-empty = A post needs a title.
error-body-empty = A post needs some text.
error-login-required = Log in to write a post.
error-upload-too-large = That file is too large (the limit is { $limit }).
error-not-found = Page not found.
error-server = Something went wrong on our side. Please try again.

## Language switcher

language-switcher = Language
# The language's own name, shown in the switcher whatever the page's language.
language-name = English
