"""``gar-analysis crm push``: write usage statistics into Dolibarr third parties' extrafields.

For each territorial actor of the CRM (académie, région, département, commune:
``crm/acteurs.csv`` of the last ``crm pull``), the processed tables give a few
figures of the latest month, written into three extrafields of the third party:

- ``gar_etab_inscrits`` (int): schools of the territory registered in the GAR;
- ``gar_part_actifs`` (double ``24,8``): share of them with at least one accès
  in the reference month (two decimals);
- ``gar_maj`` (varchar 10): that month, ``AAAA-MM``.

The rules follow the recorded exchanges of a real Dolibarr 20.0.2
(``../shared/data/dolibarr-20.0.2/README.md``, « writing statistics »):
values go as JSON numbers (a decimal string is read in the request's language:
``"0,62"`` becomes 62); only changed values are sent (every successful PUT adds
an « third party modified » agenda event, even a no-op one); the same
disclosure rules as the reports (:mod:`gar_analysis.disclosure`): an actor with
a suppressed figure gets no write at all. Dry run by default.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import config
from ..contract import read_contract_file
from ..disclosure import is_suppressed, suppress
from ..errors import ConfigError
from .dolibarr import Conflict, DolibarrClient, RightMissing, _EndOfList, credentials, log, normalize_base_url
from .http import RetryPolicy, ServiceError


@dataclass(frozen=True)
class ExtraField:
    """A third-party extrafield the push writes (created with these settings by ``--create-fields``)."""

    type: str
    size: str
    label: str
    pos: int
    help: str

    def body(self) -> dict:
        """Return the ``POST /setup/extrafields/societe/{attr}`` body (every key sent, as recorded)."""
        return {"unique": 0, "required": 0, "alwayseditable": 1, "default_value": "", "totalizable": 0,
                "printable": 0, "langfile": "", "computed": "", "param": "", "perms": "", "list": "1",
                "label": self.label, "type": self.type, "size": self.size, "pos": self.pos, "help": self.help}


FIELDS = {
    "gar_etab_inscrits": ExtraField("int", "10", "GAR - établissements inscrits", 200,
                                    "Nombre d'établissements inscrits au GAR (statistiques publiées)"),
    "gar_part_actifs": ExtraField("double", "24,8", "GAR - part d'actifs", 201,
                                  "Part des établissements actifs (0..1)"),
    "gar_maj": ExtraField("varchar", "10", "GAR - date des statistiques", 202,
                          "Mois de publication des statistiques (AAAA-MM)"),
}
#: Actor type → column of the processed ``etablissements`` table holding its code.
TERRITORY_COLUMN = {"academie": "code_academie", "region": "code_region", "departement": "code_departement",
                    "commune": "code_commune"}
RIGHT_WRITE = "Tiers → « Créer/modifier les tiers » (societe → creer, droit 122)"
RIGHT_ADMIN = ("une clé d'administrateur Dolibarr (seul un administrateur peut lister ou créer des extrafields), "
               "ou leur création à la main : Configuration → Modules → Tiers → Attributs supplémentaires")


# --------------------------------------------------------------------------- statistics

def statistics(acteurs: pd.DataFrame, etablissements: pd.DataFrame, usage: pd.DataFrame, *,
               threshold: int | None = None) -> pd.DataFrame:
    """Return, per territorial actor, the figures to publish (suppressed ones as ``c``).

    Parameters
    ----------
    acteurs : pandas.DataFrame
        ``crm/acteurs.csv`` (``id_acteur, type, nom, code``).
    etablissements : pandas.DataFrame
        The processed ``etablissements`` table (``uai, inscrit`` and the territory codes).
    usage : pandas.DataFrame
        The processed ``usage_mensuel`` table (``uai, mois, acces``).
    threshold : int, optional
        Disclosure threshold (default :data:`config.DISCLOSURE_THRESHOLD`).

    Returns
    -------
    pandas.DataFrame
        ``id_acteur, type, nom, code, gar_etab_inscrits, gar_part_actifs, gar_maj`` (one row per
        territorial actor with a code); a count below the threshold, or a share on a small
        denominator or implying a small count, is ``c``.
    """
    from ..indicators import reference_month

    month = reference_month(usage)
    if month is None:
        raise ConfigError("crm push : la table usage_mensuel est vide ; lancer « gar-analysis build » d'abord.")
    active = set(usage.loc[(usage["mois"].astype(str) == month) & (usage["acces"] > 0), "uai"].astype(str))
    registered = etablissements[etablissements["inscrit"].fillna(False).astype(bool)]
    rows = []
    for actor in acteurs.itertuples(index=False):
        column = TERRITORY_COLUMN.get(str(actor.type))
        code = "" if pd.isna(actor.code) else str(actor.code).strip()
        if column is None or not code or column not in registered.columns:
            continue
        schools = registered.loc[registered[column].astype(str) == code, "uai"].astype(str)
        n = int(len(schools))
        n_active = int(schools.isin(active).sum())
        rows.append({"id_acteur": str(actor.id_acteur), "type": actor.type, "nom": actor.nom, "code": code,
                     "gar_etab_inscrits": n, "gar_part_actifs": round(n_active / n, 2) if n else None,
                     "gar_maj": month})
    df = pd.DataFrame(rows, columns=["id_acteur", "type", "nom", "code", "gar_etab_inscrits", "gar_part_actifs",
                                     "gar_maj"])
    return suppress(df, ["gar_etab_inscrits"], rate_cols=["gar_part_actifs"],
                    denominators={"gar_part_actifs": "gar_etab_inscrits"}, threshold=threshold, implied=True)


# --------------------------------------------------------------------------- plan and write

@dataclass
class Change:
    """The values to write into one third party."""

    id_acteur: str
    nom: str
    before: dict
    month: str = ""
    values: dict = field(default_factory=dict)  # "options_<attr>" → JSON number or text


def typed(attr: str, value):
    """Return ``value`` as the JSON type of extrafield ``attr`` (int, float or str), or raise.

    Examples
    --------
    >>> typed("gar_etab_inscrits", 42.0), typed("gar_part_actifs", 0.57), typed("gar_maj", "2026-11")
    (42, 0.57, '2026-11')
    """
    kind = FIELDS[attr].type
    if kind in ("int", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
            raise ConfigError(f"crm push : valeur non numérique pour {attr} ({value!r}) : rien n'est envoyé "
                              f"(Dolibarr répondrait 500 sans détail).")
        if kind == "int":
            if float(value) != int(value):
                raise ConfigError(f"crm push : {attr} attend un entier, {value!r} reçu (Dolibarr l'arrondirait).")
            return int(value)
        return float(value)
    text = str(value)
    if len(text) > int(FIELDS[attr].size):
        raise ConfigError(f"crm push : {attr} dépasse {FIELDS[attr].size} caractères ({text!r}).")
    return text


def same(attr: str, current, new) -> bool:
    """Tell whether Dolibarr's stored value (a string such as ``"0.57000000"``, or None) equals ``new``."""
    if current is None or current == "":
        return False
    if FIELDS[attr].type in ("int", "double"):
        try:
            return abs(float(current) - float(new)) < 1e-9
        except (TypeError, ValueError):
            return False
    return str(current) == str(new)


def plan(client: DolibarrClient, stats: pd.DataFrame) -> tuple[list[Change], list[str]]:
    """Read each third party's extrafields and return the changes to write, and French notes.

    An actor with a suppressed figure is left alone (no request). Raises when an
    extrafield does not exist in Dolibarr (absent from ``array_options``).
    """
    changes, notes = [], []
    for row in stats.itertuples(index=False):
        wanted = {attr: getattr(row, attr) for attr in FIELDS}
        if any(is_suppressed(v) for v in wanted.values()) or any(v is None or (isinstance(v, float) and math.isnan(v))
                                                                  for v in wanted.values()):
            notes.append(f"tiers {row.id_acteur} ({row.nom}) : secret statistique (moins de "
                         f"{config.DISCLOSURE_THRESHOLD}), rien n'est écrit")
            continue
        try:
            tp = client.get(f"thirdparties/{row.id_acteur}", resource="thirdparties")
        except _EndOfList:
            notes.append(f"tiers {row.id_acteur} ({row.nom}) : introuvable dans Dolibarr, ignoré")
            continue
        options = tp.get("array_options") if isinstance(tp, dict) else None
        options = options if isinstance(options, dict) else {}
        missing = [attr for attr in FIELDS if f"options_{attr}" not in options]
        if missing:
            raise ConfigError(f"crm push : extrafield(s) absent(s) des tiers Dolibarr : {', '.join(missing)}. Les "
                              f"créer avec « crm push --create-fields » ({RIGHT_ADMIN}).")
        change = Change(str(row.id_acteur), str(row.nom), {a: options.get(f"options_{a}") for a in FIELDS},
                        str(row.gar_maj))
        for attr, value in wanted.items():
            value = typed(attr, value)
            if not same(attr, options.get(f"options_{attr}"), value):
                change.values[f"options_{attr}"] = value
        if change.values:
            changes.append(change)
    return changes, notes


def ensure_fields(client: DolibarrClient) -> list[str]:
    """Create the missing extrafields (admin key); return French lines saying what was done.

    Lists them with ``GET /setup/extrafields?elementtype=thirdparty``, then posts each
    missing one under ``societe`` (``thirdparty`` in the path creates it yet answers ``-1``).
    A 409 means it already exists.
    """
    try:
        listed = client.get("setup/extrafields", {"elementtype": "thirdparty"})
    except RightMissing as exc:
        raise ServiceError(f"{exc} Pour créer les extrafields : {RIGHT_ADMIN}.") from None
    existing = set((listed or {}).get("societe", {})) if isinstance(listed, dict) else set()
    lines = []
    for attr, spec in FIELDS.items():
        if attr in existing:
            lines.append(f"extrafield {attr} : déjà présent")
            continue
        try:
            new_id = client.write("POST", f"setup/extrafields/societe/{attr}", spec.body(), right=RIGHT_ADMIN)
        except Conflict:
            lines.append(f"extrafield {attr} : déjà présent (HTTP 409)")
            continue
        lines.append(f"extrafield {attr} ({spec.type} {spec.size}) : créé (id {new_id})")
    return lines


def describe(change: Change) -> str:
    """Return the French line of one change (« vide → 42 »)."""
    parts = []
    for key, value in change.values.items():
        attr = key.removeprefix("options_")
        before = change.before.get(attr)
        parts.append(f"{attr} {'vide' if before in (None, '') else before} → {value}")
    return f"tiers {change.id_acteur} ({change.nom}) : " + " ; ".join(parts)


def apply(client: DolibarrClient, changes: list[Change], *, event_owner: int | None = None,
          now: int | None = None) -> list[str]:
    """Write the changes (``PUT /thirdparties/{id}`` with ``array_options`` only); return French lines.

    Stops at the first refusal (a missing right fails every PUT alike). With
    ``event_owner``, also records an ``AC_OTH`` agenda event per third party.
    """
    done = []
    for change in changes:
        answer = client.write("PUT", f"thirdparties/{change.id_acteur}", {"array_options": change.values},
                              right=RIGHT_WRITE)
        stored = answer.get("array_options") if isinstance(answer, dict) else None
        stored = stored if isinstance(stored, dict) else {}
        lost = [k for k, v in change.values.items() if not same(k.removeprefix("options_"), stored.get(k), v)]
        if lost:  # an unknown key is dropped without a word: compare with what was sent
            log.warning("Dolibarr : tiers %s : %s non enregistré(s) par Dolibarr.", change.id_acteur, ", ".join(lost))
        done.append(describe(change))
        if event_owner is not None:
            note = "; ".join(f"{k.removeprefix('options_')}={v}" for k, v in change.values.items())
            client.write("POST", "agendaevents", {
                "type_code": "AC_OTH", "label": f"Statistiques GAR {change.month} publiées",
                "note_private": note, "datep": int(time.time() if now is None else now),
                "userownerid": int(event_owner), "socid": int(change.id_acteur), "percentage": -1},
                right="Agenda → « Créer/modifier ses actions » (agenda → myactions → create)")
    return done


# --------------------------------------------------------------------------- command line

def configure_parser(sub) -> None:
    """Add ``crm push`` to the ``crm`` sub-parsers."""
    p = sub.add_parser("push", help="Écrire des statistiques d'usage dans les extrafields des tiers Dolibarr "
                       "(simulation par défaut).",
                       description="Écrit, pour chaque collectivité ou académie du CRM, le nombre d'établissements "
                       "inscrits, la part d'actifs et le mois des statistiques dans des extrafields du tiers. "
                       "Simulation par défaut : affiche ce qui changerait ; --apply écrit. Mêmes règles de secret "
                       "statistique que les rapports.")
    p.add_argument("--url", default=None, help=f"URL de Dolibarr (sinon variable {config.ENV_DOLIBARR_URL})")
    p.add_argument("--data", type=Path, default=config.RAW_DIR / "dolibarr",
                   help="répertoire de la dernière récupération (crm/acteurs.csv ; défaut data/raw/dolibarr)")
    p.add_argument("--processed", type=Path, default=config.PROCESSED_DIR,
                   help="tables traitées (défaut data/processed, écrites par « gar-analysis build »)")
    p.add_argument("--apply", "--appliquer", dest="apply", action="store_true",
                   help="écrire dans Dolibarr (sans cette option : simulation)")
    p.add_argument("--create-fields", action="store_true",
                   help="créer les extrafields manquants (clé d'administrateur)")
    p.add_argument("--event-owner", type=int, default=None,
                   help="id de l'utilisateur Dolibarr propriétaire d'un événement « Statistiques GAR publiées » "
                   "ajouté à l'agenda de chaque tiers mis à jour (sinon aucun événement manuel)")
    p.add_argument("--retries", type=int, default=4, help="nouvelles tentatives sur erreur réseau (défaut 4)")
    p.add_argument("--timeout", type=float, default=30.0, help="délai d'attente d'une requête en secondes")


def run(args: argparse.Namespace) -> int:
    """Run ``gar-analysis crm push``; return the exit status."""
    from ..build import load_processed

    url, key = credentials(args.url)
    if not (Path(args.data) / "crm/acteurs.csv").exists():
        raise ConfigError(f"{Path(args.data) / 'crm/acteurs.csv'} absent : lancer d'abord « gar-analysis crm pull "
                          f"--out {args.data} ».")
    stats = statistics(read_contract_file(args.data, "crm/acteurs"), load_processed("etablissements", args.processed),
                       load_processed("usage_mensuel", args.processed))
    client = DolibarrClient(url, key, policy=RetryPolicy(retries=max(0, args.retries)), timeout=args.timeout,
                            progress=False)
    print(f"Dolibarr {normalize_base_url(url)} : {len(stats)} collectivité(s) ou académie(s) du CRM.")
    if args.create_fields:
        for line in ensure_fields(client):
            print(line)
    changes, notes = plan(client, stats)
    for line in notes:
        print(line)
    if not changes:
        print("Aucune modification : les extrafields sont à jour (aucune écriture, aucun événement d'agenda).")
        return 0
    if not args.apply:
        for change in changes:
            print(describe(change))
        print(f"Simulation : {len(changes)} tiers à mettre à jour. Chaque mise à jour (PUT) ajoute un événement "
              f"« Tiers modifié » à l'agenda de Dolibarr, soit {len(changes)} événement(s)"
              + (" et autant d'événements « Statistiques GAR publiées »" if args.event_owner is not None else "")
              + ". Relancer avec --apply pour écrire.")
        return 0
    for line in apply(client, changes, event_owner=args.event_owner):
        print(line)
    print(f"{len(changes)} tiers mis à jour ({len(changes)} événement(s) « Tiers modifié » ajoutés à l'agenda "
          f"par Dolibarr).")
    return 0
