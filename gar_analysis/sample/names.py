"""Word lists of the sample generator: fictional commune, school, ENT and resource names."""
from __future__ import annotations

COMMUNE_ROOTS = (
    "Aubin", "Bréval", "Carnoux", "Daumeray", "Éperlecques", "Fontenay", "Gravelines", "Hérouville",
    "Isigny", "Jouarre", "Kerlouan", "Lavaur", "Montbrison", "Noirmoutier", "Orgelet", "Pontivy",
    "Quimperlé", "Rambervillers", "Sablé", "Tournus", "Uzerche", "Valognes", "Wissant", "Yvetot",
    "Ambert", "Bellac", "Chalais", "Dozulé", "Égletons", "Figeac", "Gisors", "Hagetmau", "Issoire",
    "Josselin", "Langogne", "Mauriac", "Nérac", "Oloron", "Pithiviers", "Riom", "Saulieu", "Thiers",
    "Ussel", "Vézelay", "Lodève", "Marvejols", "Brioude", "Confolens", "Ruffec", "Loudun", "Gien",
    "Sancerre", "Morlaix", "Lannion", "Redon", "Vitré", "Fougères", "Combourg", "Ancenis", "Clisson",
)
COMMUNE_PREFIXES = ("", "", "", "", "Saint-", "Sainte-", "Le ", "La ", "Les ", "Mont-")
COMMUNE_SUFFIXES = ("", "", "", "", "", "-sur-Mer", "-en-Bois", "-le-Château", "-les-Bains", "-sur-Loire",
                    "-la-Forêt", "-du-Lac", "-en-Vallée", "-les-Vignes")

PERSONS = (
    "Jules Ferry", "Jean Moulin", "Victor Hugo", "Marie Curie", "Jean Jaurès", "Louise Michel",
    "Simone Veil", "Albert Camus", "Jacques Prévert", "Paul Langevin", "Pierre Mendès France",
    "Condorcet", "Colette", "George Sand", "Germaine Tillion", "Olympe de Gouges", "Aimé Césaire",
    "Lucie Aubrac", "Antoine de Saint-Exupéry", "Jean de La Fontaine", "Marcel Pagnol", "Jules Verne",
    "Camille Claudel", "Rosa Parks", "Émile Zola", "Louis Pasteur", "Joséphine Baker", "Gisèle Halimi",
)
PRIVATE_NAMES = ("Saint-Joseph", "Notre-Dame", "Sainte-Marie", "Saint-Michel", "La Salle", "Sainte-Anne",
                 "Saint-Louis", "Jeanne d'Arc", "Sainte-Thérèse", "Saint-Martin")
PLACES = ("des Tilleuls", "du Centre", "des Écoliers", "Les Lucioles", "Arc-en-Ciel", "du Bourg",
          "Les Marronniers", "La Fontaine", "du Parc", "Les Prés", "Pasteur", "Les Coquelicots")

#: ENT vendors (fictional) and their ENT products (médiacentre names).
ENT_VENDORS = (
    ("Numérique Éducatif SAS", "Skolaria"),
    ("EduCloud", "Edunéo"),
    ("Socle Scolaire", "Cartable Connecté"),
    ("OpenScol", "OpenScol ENT"),
    ("Classe Numérique SA", "MonENT"),
)

#: Publishers (fictional): name, specialities (resource types), degrees.
EDITEURS = (
    "Éditions du Cartable", "Numérilivre", "Belles Lettres Éducation", "Maison Sciences & Co",
    "Atlas Pédagogie", "Presse Junior Numérique", "Dico Plus", "Lumière Éditions Scolaires",
    "Savoirs Ouverts", "Orienta", "Langues Vivantes Média", "Code & Classe",
)
RESOURCE_TYPES = ("manuel numérique", "dictionnaire", "banque de ressources", "presse", "encyclopédie",
                  "outil pédagogique", "soutien scolaire", "orientation")
SUBJECTS = ("Mathématiques", "Français", "Histoire-géographie", "Sciences", "Anglais", "Espagnol",
            "Physique-chimie", "SVT", "Philosophie", "Technologie", "Allemand", "Éducation musicale")
