# Mensajes del blog de ejemplo en español. Mismos ids y mismo orden que el archivo inglés.

## Sitio

-site-name = Blog Squall
site-title = { -site-name }
site-tagline = Notas escritas en plena tormenta
page-title = { $title } · { -site-name }

## Navegación

nav-home = Inicio
nav-write = Escribir
nav-login = Iniciar sesión
nav-logout = Cerrar sesión
nav-signup = Registrarse
welcome-user = ¡Hola de nuevo, { $username }!

## Entradas

post-count =
    { $count ->
        [one] { $count } entrada
       *[other] { $count } entradas
    }
# $date ya viene formateada para el idioma (Locale::format_date).
posted-by = Publicado por { $author } el { $date }
post-read-more = Seguir leyendo
post-empty = Todavía no hay nada. ¡Sé el primero en escribir algo!
post-not-found = Esta entrada no existe.
post-image-alt = Imagen adjunta a «{ $title }»

## Formularios

form-username = Nombre de usuario
form-password = Contraseña
form-password-confirm = Confirmar contraseña
form-title = Título
form-body = Texto
form-image = Imagen (opcional)
form-submit-post = Publicar
form-submit-login = Entrar
form-submit-signup = Crear cuenta

## Errores

error-wrong-password = Nombre de usuario o contraseña incorrectos.
error-username-taken = El nombre de usuario «{ $username }» ya está en uso.
error-username-invalid = Los nombres de usuario tienen de 3 a 32 letras, cifras, guiones o guiones bajos.
error-password-short =
    { $min ->
        [one] La contraseña debe tener al menos { $min } carácter.
       *[other] La contraseña debe tener al menos { $min } caracteres.
    }
error-passwords-differ = Las contraseñas no coinciden.
error-title-empty = Una entrada necesita un título.
error-body-empty = Una entrada necesita algo de texto.
error-login-required = Inicia sesión para escribir una entrada.
error-upload-too-large = El archivo es demasiado grande (el límite es { $limit }).
error-not-found = Página no encontrada.
error-server = Algo ha fallado por nuestra parte. Vuelve a intentarlo.

## Selector de idioma

language-switcher = Idioma
# El nombre del idioma en el propio idioma, igual en cualquier página.
language-name = Español
