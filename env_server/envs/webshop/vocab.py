"""Words the catalog generator draws from: storefront sub-categories with their product types, attributes and options.

Within a sub-category no two attributes, and within an option list no two values, fuzzy-match each other under the
reward's matcher, so a wrong choice costs reward (tests check this).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SubCategory:
    category: str  # one of WebShop's five storefronts
    query: str  # the sub-category query products were "scraped" under
    breadcrumb: tuple[str, ...]
    types: tuple[str, ...]
    attributes: tuple[str, ...]
    options: tuple[str, ...]  # option names, keys of OPTION_VALUES


COLORS = ("black", "white", "pink", "navy", "red", "green", "gray", "beige", "purple", "teal", "brown", "yellow",
          "orange", "ivory", "olive", "coral", "burgundy")
OPTION_VALUES: dict[str, tuple[str, ...]] = {
    "color": COLORS,
    "size": ("xs", "s", "m", "l", "xl", "xxl"),
    "shoe size": ("5", "6", "7", "8", "9", "10", "11", "12"),
    "bed size": ("twin", "full", "queen", "king"),
    "band size": ("38mm", "40mm", "42mm", "44mm"),
    "volume": ("4 oz", "8 oz", "12 oz", "16 oz"),
    "capacity": ("32gb", "64gb", "128gb", "256gb", "512gb"),
    "scent": ("lavender", "vanilla", "eucalyptus", "citrus", "sandalwood", "unscented", "coconut", "jasmine"),
    "flavor": ("chocolate", "strawberry", "caramel", "peanut butter", "sea salt", "honey", "cinnamon", "mango"),
    "pack": ("pack of two", "pack of four", "pack of six", "pack of twelve"),
    "material": ("cotton", "linen", "velvet", "leather", "polyester"),
    "print size": ("12x16", "16x20", "24x36", "36x48"),
}

_BEAUTY, _ELEC, _FASHION, _HOME, _FOOD = (
    "Beauty & Personal Care", "Electronics", "Clothing, Shoes & Jewelry", "Home & Kitchen", "Grocery & Gourmet Food")

SUBCATEGORIES = (
    SubCategory("beauty", "face care", (_BEAUTY, "Skin Care", "Face"),
                ("night cream", "facial serum", "face roller", "clay mask", "eye cream", "face toner"),
                ("paraben free", "sensitive skin", "hyaluronic acid", "dark circles", "fine lines", "vitamin c",
                 "long lasting", "easy apply"), ("scent", "volume")),
    SubCategory("beauty", "hair care", (_BEAUTY, "Hair Care", "Styling Products"),
                ("hair oil", "dry shampoo", "curl cream", "hair mask", "conditioner spray", "scalp scrub"),
                ("argan oil", "damaged hair", "sulfate free", "frizz control", "color treated",
                 "natural ingredients", "heat protection", "dry scalp"), ("scent", "volume")),
    SubCategory("beauty", "makeup", (_BEAUTY, "Makeup", "Lips"),
                ("lip gloss", "liquid lipstick", "lip liner", "lip balm", "lip stain", "lip plumper"),
                ("long lasting", "highly pigmented", "cruelty free", "vegan formula", "matte finish", "shea butter"),
                ("color", "pack")),
    SubCategory("beauty", "fragrance", (_BEAUTY, "Fragrance", "Body Sprays"),
                ("body mist", "eau de parfum", "perfume oil", "solid perfume", "body spray", "cologne"),
                ("long lasting", "alcohol free", "travel friendly", "essential oils", "gift set", "light scent"),
                ("scent", "volume")),
    SubCategory("electronics", "headphones", (_ELEC, "Headphones", "Earbud Headphones"),
                ("wireless earbuds", "over-ear headphones", "sports headphones", "gaming headset", "neckband earphones",
                 "kids headphones"),
                ("noise cancelling", "stereo sound", "bluetooth 5", "water resistant", "long battery",
                 "built-in microphone", "fast charging", "hands free"), ("color",)),
    SubCategory("electronics", "phone accessories", (_ELEC, "Cell Phones & Accessories", "Cases"),
                ("phone case", "screen protector", "charging cable", "car mount", "power bank", "phone grip"),
                ("shock absorbing", "fast charging", "tempered glass", "slim fit", "wireless charging",
                 "drop protection", "high speed"), ("color", "pack")),
    SubCategory("electronics", "computer accessories",
                (_ELEC, "Computers & Accessories", "Keyboards, Mice & Accessories"),
                ("wireless mouse", "mechanical keyboard", "laptop stand", "usb hub", "mouse pad", "wrist rest"),
                ("ergonomic design", "plug and play", "rgb backlit", "aluminum alloy", "quiet click", "non slip"),
                ("color",)),
    SubCategory("electronics", "wearable technology", (_ELEC, "Wearable Technology", "Arm & Wristband Accessories"),
                ("watch band", "fitness tracker", "smart watch", "watch charger", "sport band", "watch case"),
                ("stainless steel", "quick release", "heart rate", "sleep tracking", "soft silicone", "easy install"),
                ("color", "band size")),
    SubCategory("electronics", "data storage", (_ELEC, "Computers & Accessories", "Data Storage"),
                ("flash drive", "memory card", "portable ssd", "external hard drive", "card reader", "thumb drive"),
                ("high speed", "usb 3", "shock resistant", "password protection", "compact design", "plug and play"),
                ("capacity", "color")),
    SubCategory("fashion", "women's loafers & slip-ons", (_FASHION, "Women", "Shoes", "Loafers & Slip-Ons"),
                ("slip-on sneakers", "canvas loafers", "ballet flats", "suede moccasins", "penny loafers",
                 "espadrilles"),
                ("rubber sole", "memory foam", "arch support", "non slip", "breathable fabric", "closed toe",
                 "everyday wear"), ("color", "shoe size")),
    SubCategory("fashion", "men's t-shirts", (_FASHION, "Men", "Clothing", "Shirts", "T-Shirts"),
                ("crew neck tee", "graphic tee", "henley shirt", "polo shirt", "pocket tee", "raglan tee"),
                ("short sleeve", "machine wash", "moisture wicking", "classic fit", "button closure", "quick dry",
                 "cotton spandex"), ("color", "size")),
    SubCategory("fashion", "women's dresses", (_FASHION, "Women", "Clothing", "Dresses"),
                ("maxi dress", "wrap dress", "midi dress", "shift dress", "sundress", "sweater dress"),
                ("long sleeve", "high waist", "v neck", "hand wash", "floral print", "daily wear", "polyester spandex"),
                ("color", "size")),
    SubCategory("fashion", "jewelry", (_FASHION, "Women", "Jewelry", "Necklaces"),
                ("pendant necklace", "hoop earrings", "charm bracelet", "stacking ring", "anklet", "choker"),
                ("sterling silver", "gold plated", "hypoallergenic", "gift box", "cubic zirconia", "nickel free"),
                ("color",)),
    SubCategory("garden", "sofas and couches", (_HOME, "Furniture", "Living Room Furniture", "Sofas & Couches"),
                ("sleeper sofa", "loveseat", "sectional couch", "futon", "chaise lounge", "settee"),
                ("wood frame", "living room", "easy assembly", "solid wood", "high density", "small space",
                 "faux leather"), ("color", "material")),
    SubCategory("garden", "bedding", (_HOME, "Bedding", "Sheets & Pillowcases", "Sheet & Pillowcase Sets"),
                ("sheet set", "duvet cover", "quilt", "pillowcases", "comforter", "bed skirt"),
                ("deep pocket", "machine washable", "wrinkle free", "breathable fabric", "hotel quality", "microfiber"),
                ("color", "bed size")),
    SubCategory("garden", "kitchen storage", (_HOME, "Kitchen & Dining", "Storage & Organization", "Food Storage"),
                ("glass containers", "spice rack", "bread box", "pantry organizer", "lunch box", "canister"),
                ("bpa free", "dishwasher safe", "stackable design", "leak proof", "easy clean", "space saving"),
                ("pack", "color")),
    SubCategory("garden", "wall art", (_HOME, "Home Décor Products", "Wall Art", "Posters & Prints"),
                ("canvas print", "framed poster", "wall decal", "metal sign", "tapestry", "photo collage"),
                ("ready to hang", "high definition", "fade resistant", "gallery wrapped", "easy installation"),
                ("print size",)),
    SubCategory("grocery", "party mix", ("Grocery & Gourmet Food", "Snack Foods", "Party Mix"),
                ("snack mix", "trail mix", "pretzel mix", "popcorn", "cheese crackers", "nut cluster"),
                ("gluten free", "non gmo", "individually wrapped", "low sodium", "high protein", "resealable bag"),
                ("flavor", "pack")),
    SubCategory("grocery", "coffee", (_FOOD, "Beverages", "Coffee, Tea & Cocoa", "Coffee"),
                ("ground coffee", "whole bean coffee", "coffee pods", "cold brew", "instant coffee", "espresso"),
                ("fair trade", "usda organic", "single origin", "low acid", "keto friendly", "small batch"),
                ("flavor", "volume")),
    SubCategory("grocery", "tea", (_FOOD, "Beverages", "Coffee, Tea & Cocoa", "Tea"),
                ("green tea", "herbal tea", "chai", "matcha powder", "oolong", "rooibos"),
                ("caffeine free", "usda organic", "loose leaf", "fair trade", "antioxidant rich", "non gmo"),
                ("flavor", "pack")),
    SubCategory("grocery", "chocolate", (_FOOD, "Candy & Chocolate", "Chocolate", "Chocolate Bars"),
                ("dark chocolate bar", "truffles", "milk chocolate bar", "chocolate covered almonds", "cocoa nibs",
                 "chocolate wafers"),
                ("sugar free", "gift box", "keto friendly", "fair trade", "dairy free", "individually wrapped"),
                ("flavor", "pack")),
)

BRAND_SYLLABLES = ("vel", "ora", "kin", "tsu", "mar", "lo", "zen", "quo", "dax", "bri", "nor", "ka", "siv", "elo",
                   "tam", "rix", "ula", "bo", "fen", "wy", "cor", "ani", "pel", "stra", "mo", "gue", "lin", "tor")
LINES = ("Nova", "Aura", "Prime", "Luxe", "Core", "Edge", "Halo", "Vista", "Summit", "Pulse", "Echo", "Nest", "Bloom",
         "Drift", "Crest", "Ember", "Orbit", "Haven", "Quill", "Zephyr")
FILLER = (
    "Designed and tested with care before it ships.",
    "Arrives in recyclable packaging with a simple guide.",
    "Backed by a thirty day satisfaction promise from the maker.",
    "Makes a thoughtful present for friends and family.",
    "Our team answers questions within one business day.",
    "Each unit is inspected by hand before packing.",
    "Suitable for home, office or weekend trips.",
    "Pairs well with other items from the same collection.",
)
