# ruff: noqa: E501  (article texts are data; wrapping them mid-sentence helps nobody)
"""Demo knowledge base for a telco/utility: Italian articles with English translations, plus two
internal agent procedures. Written through the real services (draft → review → publish)."""

from __future__ import annotations

from fedele.accounts.facade import Actor
from fedele.support.models import Article, KbCategory
from fedele.support.services import kb

CATEGORIES = [
    ("internet", "Internet e modem", "Internet and modem", "public"),
    ("fatture", "Fatture e pagamenti", "Bills and payments", "public"),
    ("contratto", "Contratto e offerte", "Contract and plans", "public"),
    ("account", "Area clienti", "Customer area", "public"),
    ("procedure-interne", "Procedure interne", "Internal procedures", "internal"),
]

# slug category, (Italian title, summary, body), (English title, summary, body) | None, keywords
ARTICLES: list[tuple[str, tuple[str, str, str], tuple[str, str, str] | None, str]] = [
    (
        "internet",
        (
            "Riavviare il modem",
            "La prima cosa da fare se internet non funziona.",
            "<p>Staccate il modem dalla presa elettrica, aspettate 30 secondi e ricollegatelo.</p>"
            "<ol><li>Attendete 3 minuti che le spie diventino fisse.</li><li>Provate di nuovo la connessione.</li></ol>"
            "<p>Se la spia DSL o FIBRA lampeggia ancora, segnalateci il guasto.</p>",
        ),
        (
            "Restart your modem",
            "The first thing to try when the internet is down.",
            "<p>Unplug the modem from the power socket, wait 30 seconds and plug it back in.</p>"
            "<ol><li>Wait 3 minutes for the lights to stay on.</li><li>Try the connection again.</li></ol>"
            "<p>If the DSL or FIBRE light still blinks, report a fault.</p>",
        ),
        "modem router riavvio reset spie",
    ),
    (
        "internet",
        (
            "Segnalare un guasto",
            "Come aprire una segnalazione quando la linea non funziona.",
            "<p>Dalla sezione <strong>Nuova richiesta</strong> scegliete il tipo <em>Guasto</em> e indicate da quando "
            "la linea non funziona e quali spie sono accese. Un tecnico vi contatterà entro i tempi del vostro contratto.</p>",
        ),
        (
            "Report a fault",
            "How to open a report when the line is down.",
            "<p>From <strong>New request</strong> choose the type <em>Incident</em> and tell us since when the line is "
            "down and which lights are on. A technician will contact you within your contract's times.</p>",
        ),
        "guasto linea",
    ),
    (
        "internet",
        (
            "Wi-Fi lento",
            "Consigli per migliorare la copertura Wi-Fi di casa.",
            "<p>Mettete il modem in posizione centrale e sopraelevata, lontano da microonde e muri spessi. "
            "Usate la rete a 5 GHz vicino al modem e quella a 2,4 GHz nelle stanze lontane.</p>",
        ),
        (
            "Slow Wi-Fi",
            "Tips to improve Wi-Fi coverage at home.",
            "<p>Place the modem in a central, raised spot, away from microwaves and thick walls. Use the 5 GHz network "
            "near the modem and 2.4 GHz in distant rooms.</p>",
        ),
        "wifi wireless velocità",
    ),
    (
        "fatture",
        (
            "Leggere la fattura",
            "Cosa significano le voci della bolletta.",
            "<p>La prima pagina riporta totale, scadenza e periodo. Nelle pagine seguenti trovate il dettaglio dei "
            "canoni, dei consumi e delle imposte (IVA al 22%).</p>",
        ),
        (
            "Read your bill",
            "What the lines of your bill mean.",
            "<p>The first page shows the total, the due date and the period. The following pages list fees, "
            "usage and taxes (22% VAT).</p>",
        ),
        "bolletta importo scadenza",
    ),
    (
        "fatture",
        (
            "Pagare con addebito SEPA",
            "Attivare la domiciliazione bancaria.",
            "<p>Nell'area clienti, sezione <strong>Pagamenti</strong>, inserite l'IBAN e accettate il mandato SEPA. "
            "L'addebito parte dalla fattura successiva.</p>",
        ),
        (
            "Pay by SEPA direct debit",
            "Set up direct debit from your bank account.",
            "<p>In the customer area, <strong>Payments</strong>, enter your IBAN and accept the SEPA mandate. "
            "Debits start from the next bill.</p>",
        ),
        "sepa rid domiciliazione iban",
    ),
    (
        "fatture",
        (
            "Fattura elettronica per partite IVA",
            "Codice destinatario SDI e PEC.",
            "<p>Le aziende ricevono la fattura tramite il Sistema di Interscambio: indicate il codice destinatario "
            "(7 caratteri) o l'indirizzo PEC nell'area clienti.</p>",
        ),
        None,
        "sdi pec codice destinatario fatturapa",
    ),
    (
        "contratto",
        (
            "Cambiare piano tariffario",
            "Passare a un'offerta diversa.",
            "<p>Dalla sezione <strong>Abbonamenti</strong> scegliete <em>Cambia piano</em>: vedrete l'anteprima del "
            "costo proporzionale prima di confermare.</p>",
        ),
        (
            "Change your plan",
            "Move to a different offer.",
            "<p>From <strong>Subscriptions</strong> choose <em>Change plan</em>: you will see the prorated cost "
            "before confirming.</p>",
        ),
        "offerta tariffa upgrade",
    ),
    (
        "contratto",
        (
            "Trasloco della linea",
            "Portare il servizio nella nuova casa.",
            "<p>Chiedete il trasloco almeno 20 giorni prima indicando il nuovo indirizzo: verifichiamo la copertura "
            "e fissiamo l'appuntamento con il tecnico.</p>",
        ),
        (
            "Moving house",
            "Take your service to your new home.",
            "<p>Ask for the move at least 20 days ahead with the new address: we check coverage and book the "
            "technician.</p>",
        ),
        "trasloco cambio indirizzo",
    ),
    (
        "account",
        (
            "Recuperare la password dell'area clienti",
            "Se non riuscite ad accedere.",
            "<p>Nella pagina di accesso scegliete <em>Password dimenticata</em> e seguite il link che vi inviamo per "
            "e-mail (valido 1 ora).</p>",
        ),
        (
            "Reset your customer-area password",
            "If you cannot sign in.",
            "<p>On the sign-in page choose <em>Forgot password</em> and follow the link we e-mail you (valid for "
            "1 hour).</p>",
        ),
        "password accesso login",
    ),
    (
        "account",
        (
            "Aggiornare i dati di contatto",
            "E-mail, telefono e consensi.",
            "<p>Nell'area clienti, sezione <strong>Profilo</strong>, potete cambiare e-mail, telefono e consensi "
            "di marketing in qualsiasi momento.</p>",
        ),
        (
            "Update your contact details",
            "E-mail, phone and consents.",
            "<p>In the customer area, <strong>Profile</strong>, you can change e-mail, phone and marketing consents "
            "at any time.</p>",
        ),
        "profilo email telefono privacy",
    ),
]

INTERNAL = [
    (
        "Procedura: sostituzione modem guasto",
        "Quando e come spedire un modem nuovo.",
        "<ol><li>Verificare con il test di linea che il guasto sia del modem.</li><li>Aprire un ordine di "
        "sostituzione con causale <em>RMA</em>.</li><li>Indicare al cliente il reso del vecchio modem entro 14 giorni.</li></ol>",
        "rma sostituzione magazzino",
    ),
    (
        "Procedura: rimborso doppio addebito",
        "Verifiche prima di emettere una nota di credito.",
        "<p>Controllare nell'estratto conto che i due pagamenti siano stati incassati, poi emettere una nota di "
        "credito e un rimborso sullo stesso IBAN. Serve l'approvazione del supervisore sopra 100 €.</p>",
        "rimborso nota di credito doppio addebito",
    ),
]


def _publish(actor: Actor, article: Article) -> Article:
    version = article.versions.get(number=1)
    kb.version_submit(actor=actor, version=version)
    kb.version_publish(actor=actor, version=version)
    article.refresh_from_db()
    return article


def load_articles(actor: Actor) -> int:
    """Create the demo categories and articles (idempotent: does nothing when articles exist).
    ``actor`` must be able to publish (supervisor or admin). Returns the number of articles created."""
    if Article.objects.exists():
        return 0
    for position, (slug, name_it, name_en, visibility) in enumerate(CATEGORIES):
        if not KbCategory.objects.filter(slug=slug).exists():
            kb.category_create(
                actor=actor,
                slug=slug,
                name_it=name_it,
                name_en=name_en,
                visibility=visibility,
                position=position,
            )
    created = 0
    for category, italian, english, keywords in ARTICLES:
        title, summary, body = italian
        source = kb.article_create(
            actor=actor,
            language="it",
            title=title,
            summary=summary,
            body_html=body,
            category=category,
            keywords=keywords,
        )
        _publish(actor, source)
        created += 1
        if english is not None:
            title_en, summary_en, body_en = english
            translation = kb.translation_create(
                actor=actor,
                source=source,
                language="en",
                title=title_en,
                summary=summary_en,
                body_html=body_en,
            )
            _publish(actor, translation)
            created += 1
    for title, summary, body, keywords in INTERNAL:
        article = kb.article_create(
            actor=actor,
            language="it",
            title=title,
            summary=summary,
            body_html=body,
            category="procedure-interne",
            visibility="internal",
            keywords=keywords,
        )
        _publish(actor, article)
        created += 1
    return created
