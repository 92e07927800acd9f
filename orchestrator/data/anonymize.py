"""Anonymisation of counseling text: typed placeholders for every personal identifier.

Invisible format characters are removed first (a zero-width space inside a
number hides nothing from a reader). Then patterns, for identifiers with a
shape: e-mail, URL, ID-card numbers, QQ/WeChat and other account ids, student
numbers, addresses with a house number, Chinese phone numbers in every
grouping (each digit may follow one separator), with `+86`/`0086`, landlines
with area codes, hotlines, international numbers, numbers in Chinese digits,
and any other long run of digits. Then person names: after cues
(introductions, greetings, relation words), and as jieba's part-of-speech
tagger marks them (`nr`), rejoined where it cut a name in two. A tagged word
counts as a name only when it reads like one (a common surname or 小/阿/老
before one or two characters, not an everyday word of the dictionary), and an
allow-list keeps counseling words that the tagger mistakes for names.

While working, a placeholder is a single private-use character, so no later
pattern can match inside an earlier placeholder; they become `[KIND]` at the end.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from functools import cache

CJK = r"\u4e00-\u9fff"
# One separator between two digits: a dash of any kind (spaces around it allowed), a dot, slash, tilde,
# underscore or one space. Normalisation has already turned full-width digits into ASCII.
SEP = r"(?:\s?[-.－—–‐‑‒−~_/，、,]{1,2}\s?|\s)"
CUE_SEP = r"\s*(?:[:：是为]|号码是|号是|号码为|号为)?\s*"
CN_DIGIT = "零〇一二三四五六七八九幺两壹贰叁肆伍陆柒捌玖"
DIGITS = rf"[0-9{CN_DIGIT}]"
# Invisible format characters (zero-width spaces and joiners, soft hyphen, word joiner, BOM) hide nothing
# from a reader but split a number or a name for a pattern: they are removed before anything is matched.
INVISIBLE = re.compile(r"[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u206a-\u206f\ufeff]")


def _digits(count: str) -> str:
    """`count` more digits, each after an optional separator: every grouping of a number at once."""
    return rf"(?:{SEP}?\d){{{count}}}"


def _phone() -> re.Pattern:
    country = r"(?:(?:\+|00)\s?86|\(\s?\+?\s?86\s?\)|（\s?\+?\s?86\s?）|86(?=[-\s]))\s?[-－]?\s?"
    mobile = rf"(?:\(\s?1[3-9]\d\s?\)|（\s?1[3-9]\d\s?）|1{SEP}?[3-9]{SEP}?\d){_digits(8)}"
    area = r"(?:0\d{2,3}|\(\s?0\d{2,3}\s?\)|（\s?0\d{2,3}\s?）)"
    landline = rf"{area}{_digits('7,8')}(?:\s?(?:转|ext\.?|-)\s?\d{{1,5}})?"
    hotline = rf"[48]00{_digits(7)}"
    international = rf"\+\s?\d{{1,3}}\s?(?:\(\s?\d{{1,4}}\s?\)|\d{{1,4}}){_digits('5,11')}"
    local = rf"(?!(?:19|20)\d\d{SEP}(?:19|20)\d\d(?!\d))\d{{4}}{SEP}\d{{4}}"
    return re.compile(
        rf"(?<![\dA-Za-z])(?:(?:{country})?(?:{mobile})|(?:{country})?{landline}|{hotline}|{international}|{local})"
        rf"(?!{SEP}?\d)"
    )


# (kind, pattern): a pattern with a group replaces only the group (the cue word stays: 学号[STUDENT_ID]).
# Order matters: specific ids before phones, phones before the catch-all for long digit runs.
PATTERNS: list[tuple[str, re.Pattern]] = [
    (
        "EMAIL",
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+\s?(?:@|＠|#|\(at\)|\[at\]|\s?艾特\s?|\s(?:at|AT)\s)\s?"
            r"[A-Za-z0-9-]+(?:\s?(?:\.|。|\s(?:dot|DOT)\s|点)\s?[A-Za-z0-9-]+)*"
            r"\s?(?:\.|。|\s(?:dot|DOT)\s|点)\s?[A-Za-z]{2,}"
        ),
    ),
    (
        "URL",
        re.compile(
            r"(?:https?://|www\.)[^\s，。；、）)\]】\u4e00-\u9fff]+"
            r"|(?<![@\w.])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:com|cn|net|org|edu|gov|io|me|cc|top|xyz|info)"
            r"(?:\.cn)?(?:/[^\s，。；、）)\]】\u4e00-\u9fff]*)?(?![A-Za-z])",
            re.IGNORECASE,
        ),
    ),
    (
        "ID_CARD",
        re.compile(rf"(?<![\dA-Za-z])(\d{_digits(16)}{SEP}?[\dXx])(?![\dA-Za-z])"),
    ),
    (
        "ID_CARD",
        re.compile(
            rf"(?:护照|身份证|证件|驾照|驾驶证)(?:号码|号)?(?:后[四六八]位)?{CUE_SEP}([A-Za-z]{{0,2}}\d[\dXx]{{3,17}})"
        ),
    ),
    (
        "QQ",
        re.compile(rf"(?:QQ|qq|Qq|扣扣|企鹅)(?:号码|号)?{CUE_SEP}(\d{_digits('4,12')})"),
    ),
    (
        "WECHAT",
        re.compile(
            rf"(?<![A-Za-z])(?:微\s?信|威信|薇信|薇|weixin|wei\s?xin|wechat|vx|wx|V信|v信|[Vv](?=\s*[:：]))(?:号)?{CUE_SEP}"
            r"([A-Za-z][-_A-Za-z0-9]{4,19})",
            re.IGNORECASE,
        ),
    ),
    (
        "ACCOUNT",
        re.compile(
            r"(?<![A-Za-z])(?:微信|[Vv][Xx]?|抖音|快手|微博|小红书|[Bb]站)(?:号)?\s*(?:搜一下|搜索|搜|号是|是|加)?\s*[:：]?\s*"
            r"([A-Za-z][-_A-Za-z0-9]{4,29})(?![A-Za-z0-9])"
        ),
    ),
    ("ACCOUNT", re.compile(r"(?<![A-Za-z0-9._%+-])@([^\s@，。,.!！?？；;：:]{2,20})(?=\s|$)")),
    (
        "ACCOUNT",
        re.compile(
            r"(?:抖音|快手|微博|小红书|[Bb]站|ins|Instagram|推特|[Tt]witter|知乎|贴吧|账号|帐号|用户名|[Ii][Dd])"
            rf"(?:号)?{CUE_SEP}([A-Za-z0-9_][-_A-Za-z0-9.]{{3,29}})"
        ),
    ),
    (
        "STUDENT_ID",
        re.compile(
            r"(?:学号|学籍号|工号|准考证号|考号|证件号|学生证号|编号)(?:码)?"
            rf"{CUE_SEP}([A-Za-z]{{0,3}}\d{_digits('3,18')})"
        ),
    ),
    (
        "ADDRESS",
        re.compile(
            rf"(?:[{CJK}]{{2,6}}(?:路|街|大街|大道|巷|胡同|弄|小区|村))?(?<!\d)\d+号(?:院|楼)?"
            rf"(?:\d+(?:栋|幢|号楼|单元|层|楼|室))+|[{CJK}]{{2,8}}(?:路|街|大街|大道|巷|胡同|弄)\d+号"
        ),
    ),
    (
        "ADDRESS",
        re.compile(
            rf"(?:[{CJK}]{{2,4}}(?:小区|花园|公寓|社区|家园|苑|府|城|村))?(?<!\d)(?:\d+期)?\d+(?:栋|幢|号楼)"
            rf"(?:\d+单元)?(?:\d+(?:层|楼|室)?)?"
        ),
    ),
    (
        "PLATE",
        re.compile(
            r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z]\s?[A-Z0-9]{5,6}(?![A-Za-z0-9])"
        ),
    ),
    ("PHONE", _phone()),
    (
        "PHONE",
        re.compile(
            rf"(?:电话|手机|手机号|号码|座机|联系方式|联系电话|打给我|call){CUE_SEP}"
            rf"((?:\+|00)?{DIGITS}(?:{SEP}?{DIGITS}){{4,15}})"
        ),
    ),
    (
        "PHONE",
        re.compile(rf"[{CN_DIGIT}](?:\s?[{CN_DIGIT}]){{6,}}"),
    ),  # 一三八一二三四五六七八
    (
        "NUMBER",
        re.compile(rf"(?<![\d.])(?!(?:19|20)\d\d{SEP}(?:19|20)\d\d(?!\d))\d{_digits('6,')}(?![\d])"),
    ),
]

# The most common Chinese surnames (single and compound): a tagged word reads as a name when it starts with one.
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟"
    "谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安"
    "齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛"
    "靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚"
    "皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦"
    "戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信"
    "展阴昝智幸奉植衡富尧闭由"
) - set("练查解战计相初门敬普但居揭干斯植衡富闭展衣束危") | {
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "宇文",
    "司徒",
    "夏侯",
    "令狐",
    "端木",
    "独孤",
}
# Titles after a surname (李老师, 郑校长): the surname before one is a name whatever its tag.
TITLES = (
    "先生",
    "小姐",
    "女士",
    "老师",
    "同学",
    "阿姨",
    "叔叔",
    "医生",
    "博士",
    "教授",
    "老板",
    "校长",
    "主任",
    "经理",
    "大夫",
    "律师",
    "警官",
    "师傅",
    "处长",
    "科长",
    "局长",
    "院长",
    "书记",
    "班长",
    "组长",
    "总",
    "姐",
    "哥",
)
HONORIFICS = TITLES
# Words the tagger marks as names in counseling text that are not names.
ALLOWED = {
    "谢谢",
    "谢谢您",
    "谢谢你",
    "明白",
    "祝您",
    "祝你",
    "祝福",
    "祝你好运",
    "宝宝",
    "二宝",
    "大宝",
    "温馨",
    "温暖",
    "温柔",
    "安静",
    "安全",
    "安全感",
    "安抚",
    "安慰",
    "安心",
    "康复",
    "阳光",
    "原谅",
    "智慧",
    "幸福",
    "高兴",
    "高中",
    "高考",
    "常常",
    "平静",
    "平安",
    "文静",
    "和谐",
    "乐观",
    "向往",
    "沙滩",
    "江湖",
    "海洋",
    "方向",
    "田野",
    "金钱",
    "白天",
    "白色",
    "黄色",
    "成长",
    "成熟",
    "程度",
    "计划",
    "时间",
    "时光",
    "关心",
    "关注",
    "关系",
    "车子",
    "房子",
    "马上",
    "云朵",
    "春天",
    "夏天",
    "秋天",
    "冬天",
    "小心",
    "小时",
    "小学",
    "小孩",
    "小朋友",
    "小三",
    "老公",
    "老婆",
    "老乡",
    "老家",
    "小熊",
    "小白",
    "小黑",
    "小龙",
    "小马",
    "小牛",
    "小羊",
    "小鱼",
    "小鸟",
    "小狗",
    "小猫",
    "小米",
    "小麦",
    "小金",
    "小康",
    "小路",
    "小吃",
    "小区",
    "小姐",
    "小组",
    "小事",
    "小说",
    "小班",
    "小偷",
    "毛绒",
    "艾滋",
}
LINKS = frozenset("和与跟同给被让")  # a word glued to a name by the segmenter: 和小伟
# Characters that end words the segmenter calls names but that are not (普通班, 花园里, 施暴者).
NOT_NAME_END = set("里班声者化们性度式期时后前中上下内外间边绒家人生女男子儿狼狗猫猪鸡鸭虫鸟")
GRADE = re.compile(r"^(?:[高初][一二三]|[大研][一二三四])$")
RELATIONS = (
    "同桌|室友|舍友|同学|朋友|好友|闺蜜|发小|男朋友|女朋友|男友|女友|对象|前任|前男友|前女友|老公|老婆|丈夫|妻子"
    "|儿子|女儿|弟弟|妹妹|哥哥|姐姐|表哥|表姐|表弟|表妹|堂哥|堂姐|堂弟|堂妹|同事|领导|上司|老板|老师|班主任|辅导员"
    "|校长|邻居|孩子|妈妈|爸爸|母亲|父亲|妈|爸|舅舅|舅妈|姑姑|姑父|阿姨|叔叔|婶婶|伯伯|伯父|伯母|婆婆|公公|爷爷|奶奶"
    "|外公|外婆|姥姥|姥爷|岳父|岳母|嫂子|姐夫|妹夫|侄子|侄女|外甥|外甥女|继父|继母|后妈|后爸|网友|暗恋的人|喜欢的人"
)
RELATION_WORDS = frozenset(RELATIONS.split("|"))
_SURNAME_LED = (
    "(?:"
    + "|".join(sorted((n for n in SURNAMES if len(n) == 2), key=len))
    + f"|[{''.join(sorted(n for n in SURNAMES if len(n) == 1))}]|[小阿老])"
)
_STOP = "的了着过是在和与跟也都就还又很太啊呀吧呢嘛哦么"  # characters a given name rarely ends with
_BOUNDARY = r"(?=[，,。.！!？?\s；;、：:）)”\"啊呀吧呢嘛哦]|$)"
# (cue, strict): after a strong cue any two or three characters are a name; after a weak one (我是, 你好,
# a relation) only a word shaped like one (surname first, 小/阿/老 first, or doubled: 萌萌) before a pause.
NICKNAME = re.compile(r"(?:网名|外号|昵称|小名|绰号)(?:叫做|叫|是|为)?\s*[:：]?\s*([^，。！？,.!?；;\s]{1,12})")
CUES: list[tuple[re.Pattern, bool]] = [
    (
        re.compile(
            r"(?:我叫做|我叫|我的名字(?:是|叫做|叫)|名字叫做|名字叫|名叫|本人|(?:都|就|可以|大家|同学们|朋友们)叫我"
            r"|称呼我为?|姓名\s*[:：]?|联系人\s*[:：]?|(?:他|她)(?:的名字)?叫)"
            rf"\s*(?![了过着起醒我你他她它们来去到得])([{CJK}]{{2,4}})"
        ),
        False,
    ),
    (
        re.compile(rf"(?:{RELATIONS})(?:的名字)?(?:叫做|名叫|叫)\s*([{CJK}]{{2,4}})"),
        False,
    ),
    (re.compile(rf"(?:{RELATIONS})(?:就)?是\s*([{CJK}]{{2,4}})"), True),
    (re.compile(rf"(?:我是|我就是|我叫做)\s*([{CJK}]{{2,4}})"), True),
    (
        re.compile(rf"(?:你好|您好|嗨|哈喽|再见|谢谢你|谢谢您)[，,、\s]*([{CJK}]{{2,4}})"),
        True,
    ),
]
SURNAME_CUE = re.compile(
    r"(?<![百贵])姓\s*("
    + "|".join(sorted((n for n in SURNAMES if len(n) == 2), key=len))
    + f"|[{''.join(sorted(n for n in SURNAMES if len(n) == 1))}])"
    + r"(?=[，,。.！!？?\s；;、]|$|[叫名单，])"
)
ENGLISH_NAME = re.compile(
    r"(?:我叫|我的(?:英文)?名字(?:是|叫)|英文名(?:字)?(?:是|叫)?|叫我|名叫)\s*([A-Z][a-z]{1,15}(?:\s[A-Z][a-z]{1,15})?)"
    rf"|(?:{RELATIONS})\s*([A-Z][a-z]{{1,15}}(?:\s[A-Z][a-z]{{1,15}})?)(?![A-Za-z])"
    r"|(?<![A-Za-z])([A-Z][a-z]{1,15}\s(?:Zhang|Wang|Li|Liu|Chen|Yang|Huang|Zhao|Wu|Zhou|Xu|Sun|Ma|Zhu|Hu|Guo|He|Lin|Luo"
    r"|Gao|Zheng|Liang|Xie|Song|Tang|Han|Feng|Deng|Cao|Peng|Zeng|Xiao|Tian|Dong|Pan|Yuan|Cai|Jiang|Yu|Du|Ye"
    r"|Cheng|Wei|Su|Lu|Ding|Ren|Shen|Yao|Cui|Zhong|Tan|Wong|Chan|Lee|Cheung|Lau|Ng|Ho|Tsang)(?![A-Za-z]))"
)
NAME_TAGS = ("nr", "nrfg", "nrt")
GIVEN_FLAGS = (
    *NAME_TAGS,
    "nz",
    "z",
    "ns",
    "i",
    "a",
    "ag",
    "ng",
    "an",
    "j",
)  # tags the segmenter gives given names
# Tags a surname standing alone gets (赵/nr, 孙/zg, 何/r, 黄/a); a preposition or measure word is not one.
SURNAME_FLAGS = ("nr", "nrfg", "nrt", "zg", "ng", "a", "r", "n", "nz")
# Surnames that are far more often everyday words, never joined to the token after them: 这段/困惑, 那/阿姨.
AMBIGUOUS_SURNAMES = set("时那师和于由向段来都能可全国信元万成其第次些个很也又把被让给跟同位名每各某本该此")
COMMON_GIVEN_FREQ = 200
COMMON_TAIL_FREQ = 300  # a dictionary "name" whose given-name part is an everyday word (原以为, 祝你们) is not one
COMMON_WORD_FREQ = 100  # jieba dictionary frequency from which a tagged word is an everyday word, not a name


KINDS = (
    "EMAIL",
    "URL",
    "ID_CARD",
    "QQ",
    "WECHAT",
    "ACCOUNT",
    "STUDENT_ID",
    "ADDRESS",
    "PLATE",
    "PHONE",
    "NUMBER",
    "NAME",
)
# While anonymising, a placeholder is one private-use character, which no pattern and no segmenter reads as a
# digit, letter or word: a later pattern cannot match inside an earlier placeholder ([ID_CARD] holds "ID").
MARK = {kind: chr(0xE000 + i) for i, kind in enumerate(KINDS)}
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def anonymize(text: str, counts: Counter | None = None, names: set[str] | None = None) -> str:
    """Replace personal details with typed placeholders ([PHONE], [NAME], ...); `names` collects names found."""
    text = _PRIVATE_USE.sub("", INVISIBLE.sub("", text))
    before = text
    for kind, pattern in PATTERNS:
        text = pattern.sub(lambda m, kind=kind: _swap(m, kind, counts), text)
    text = ENGLISH_NAME.sub(lambda m: _swap_groups(m, counts), text)
    text = _cued_names(text, counts)
    text = SURNAME_CUE.sub(lambda m: _swap(m, "NAME", counts), text)
    text = _tagged_names(text, counts)
    if names is not None:
        names.update(_replaced_names(before, text))
    for kind, mark in MARK.items():
        text = text.replace(mark, f"[{kind}]")
    return text


def _replaced_names(before: str, after: str) -> set[str]:
    """The words a [NAME] stands for in `after` (two characters or more, Chinese only)."""
    import difflib

    found = set()
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "replace" and after[j1:j2] == MARK["NAME"] and re.fullmatch(rf"[{CJK}]{{2,4}}", before[i1:i2]):
            found.add(before[i1:i2])
    return found


def replace_names(text: str, names: set[str], counts: Counter | None = None) -> str:
    """Every other mention of names already found in the same dialogue (小凡 named once, mentioned again)."""
    for name in sorted(names, key=len, reverse=True):
        hits = text.count(name)
        if hits:
            text = text.replace(name, "[NAME]")
            if counts is not None:
                counts["NAME"] += hits
    return text


def _swap_groups(match: re.Match, counts: Counter | None) -> str:
    group = next(i for i in range(1, len(match.groups()) + 1) if match.group(i))
    if counts is not None:
        counts["NAME"] += 1
    start, end = match.span(group)
    return match.group(0)[: start - match.start()] + MARK["NAME"] + match.group(0)[end - match.start() :]


def _cued_names(text: str, counts: Counter | None) -> str:
    """Names after an introduction, a greeting or a relation word, trimmed to their name-shaped part."""
    _, freq = _tagger()
    text = NICKNAME.sub(lambda m: _swap(m, "NAME", counts), text)
    for pattern, strict in CUES:

        def swap(match: re.Match, strict: bool = strict) -> str:
            name = _cued_name(match.group(1), match.string[match.end(1) :], strict, freq)
            if not name:
                return match.group(0)
            if counts is not None:
                counts["NAME"] += 1
            start = match.start(1) - match.start()
            return match.group(0)[:start] + MARK["NAME"] + match.group(0)[start + len(name) :]

        text = pattern.sub(swap, text)
    return text


def _cued_name(candidate: str, after: str, strict: bool, freq: dict) -> str:
    """The name at the start of `candidate` (what a cue captured), or '' when it does not read as one."""
    for size in (3, 2, 4):
        word = candidate[:size]
        rest = candidate[size:] + after
        if len(word) < size or word[-1] in _STOP or word in ALLOWED or GRADE.match(word[:2]):
            continue
        if word[:2] in RELATION_WORDS or word[:1] in RELATION_WORDS or (strict and word.endswith(TITLES)):
            continue
        if word[:2] in ALLOWED or re.search("[我你他她它们]", word) or _surname(word) in AMBIGUOUS_SURNAMES:
            continue
        shaped = bool(_surname(word)) or word[0] in "小阿老" or (size == 2 and word[0] == word[1])
        pause = re.match(_BOUNDARY, rest) is not None
        known = freq.get(word) or 0
        if strict and not (shaped and pause and known < (1 if _surname(word) else COMMON_WORD_FREQ)):
            continue
        if not strict and not (pause or shaped):
            continue
        if size == 4 and word[:2] not in SURNAMES:
            continue
        return word
    return ""


def _swap(match: re.Match, kind: str, counts: Counter | None) -> str:
    if counts is not None:
        counts[kind] += 1
    if not match.groups():
        return MARK[kind]
    start, end = match.span(1)
    whole = match.start()
    return match.group(0)[: start - whole] + MARK[kind] + match.group(0)[end - whole :]


@cache
def _tagger() -> tuple:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    jieba.dt.check_initialized()
    return jieba.posseg.dt, jieba.dt.FREQ


def _tagged_names(text: str, counts: Counter | None) -> str:
    """Person names the segmenter tags, titles kept (`[NAME]先生`)."""
    if not re.search(rf"[{CJK}]", text):
        return text
    tagger, freq = _tagger()
    words = _join_split_names([(p.word, p.flag) for p in tagger.cut(text)], freq)
    out = []
    previous = ""
    for i, (word, flag) in enumerate(words):
        following = words[i + 1][0] if i + 1 < len(words) else ""
        unknown = not freq.get(word)
        after_relation = previous in RELATION_WORDS or (previous in LINKS and flag in NAME_TAGS and unknown)
        lead = ""
        if len(word) > 2 and word[0] in LINKS and _name_part(word[1:], flag, following, freq) == word[1:]:
            lead, word = (
                word[0],
                word[1:],
            )  # 和小伟: the segmenter glued a conjunction to the name
        name = _name_part(word, flag, following, freq, after_relation)
        if word.strip():
            previous = word
        if name is None:
            out.append(lead + word)
            continue
        if counts is not None:
            counts["NAME"] += 1
        out.append(lead + MARK["NAME"] + word[len(name) :])
    return "".join(out)


def _join_split_names(words: list[tuple[str, str]], freq: dict) -> list[tuple[str, str]]:
    """Rejoin names the segmenter cut in two: 赵/婷婷, 何/俊杰, 郑/老师, 小/王, 朱子/轩, 诸葛/明亮, 爸爸 王/大海."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word, flag = words[i]
        nxt, nxt_flag = words[i + 1] if i + 1 < len(words) else ("", "")
        surname = len(word) == 1 and word in SURNAMES and word not in AMBIGUOUS_SURNAMES and word not in LINKS
        after_relation = bool(out) and out[-1][0] in RELATION_WORDS
        after = words[i + 2][0] if i + 2 < len(words) else ""
        if surname and flag[:1] not in "pcu" and re.fullmatch(rf"[{CJK}]{{1,2}}", nxt or "-") and after in TITLES:
            out.append((word + nxt, "nr"))  # 邓/文静/老师: a given name that is also a word
            i += 2
        elif surname and flag[:1] not in "pcu" and (nxt in TITLES or nxt in ("某", "某某")):
            out.append((word + nxt, "nr"))  # 郑/ns 老师, 张/q 先生, 谢/v 老师
            i += 2
        elif (
            surname
            and (flag in SURNAME_FLAGS or after_relation and flag[:1] not in "dvpcu")
            and (_given_name(nxt, nxt_flag, freq) or after_relation and _plain_word(nxt, nxt_flag))
        ):
            out.append((word + nxt, "nr"))
            i += 2
        elif (
            word in ("小", "老", "阿")
            and len(nxt) == 1
            and (nxt in SURNAMES and nxt not in AMBIGUOUS_SURNAMES or after_relation and _plain_word(nxt, nxt_flag))
        ):
            out.append((word + nxt, "nr"))  # 小/王, 老/李
            i += 2
        elif len(word) == 2 and word in SURNAMES and re.match(rf"[{CJK}]", nxt):
            given, taken, rest = _compound_given(words, i + 1)
            out += [(word + given, "nr")] + ([(rest, "x")] if rest else [])
            i += 1 + taken
        elif (
            flag in NAME_TAGS
            and len(word) == 2
            and _surname(word)
            and word not in ALLOWED
            and len(nxt) == 1
            and (nxt_flag in NAME_TAGS or nxt_flag in ("n", "ng", "a", "ag", "z", "i") and nxt not in NOT_NAME_END)
        ):
            out.append((word + nxt, "nr"))
            i += 2
        else:
            out.append((word, flag))
            i += 1
    return out


def _plain_word(word: str, flag: str) -> bool:
    """A one- or two-character Chinese word that is not a verb, adverb, function word, number or measure."""
    return bool(re.fullmatch(rf"[{CJK}]{{1,2}}", word)) and flag[:1] not in "vdpcuxmqr"


def _compound_given(words: list[tuple[str, str]], start: int) -> tuple[str, int, str]:
    """(given name, tokens it spans, what is left of the last one) after a compound surname."""
    word, _ = words[start]
    if len(word) > 1:
        return word[:2], 1, word[2:]
    given, taken = word, 1
    if start + 1 < len(words):
        second, second_flag = words[start + 1]
        if len(second) == 1 and re.match(rf"[{CJK}]", second) and second_flag[:1] not in "xupcd":
            given, taken = given + second, 2
    return given, taken, ""


def _given_name(word: str, flag: str, freq: dict) -> bool:
    """Whether a token after a lone surname reads as a given name."""
    return (
        1 <= len(word) <= 2
        and flag in GIVEN_FLAGS
        and word not in ALLOWED
        and word not in HONORIFICS
        and (freq.get(word) or 0) < COMMON_GIVEN_FREQ
        and bool(re.fullmatch(rf"[{CJK}]+", word))
    )


def _name_part(word: str, flag: str, following: str, freq: dict, after_relation: bool = False) -> str | None:
    """The part of a tagged word that is a person's name (a title after it stays), else None.

    Words the segmenter found outside its dictionary are names when shaped like one (surname first, or
    小/阿 before one or two characters); dictionary words it tags as names are mostly set phrases
    (幸福快乐, 祝你们, 普通班), so of those only surname + title, 某, a compound surname, or a rare surname +
    unknown given name pass. Right after a relation word (我女朋友 梓涵) a tagged word is a name.
    """
    if word in ALLOWED or (word[0] in LINKS and word[1:] in ALLOWED) or GRADE.match(word[:2]):
        return None
    if not re.fullmatch(rf"[{CJK}]+", word):
        return None
    if word[:2] in SURNAMES and 3 <= len(word) <= 4:
        return word  # 上官婉儿, 司徒雷登: a compound surname is not an everyday word
    for title in (*TITLES, "某某", "某"):
        if word.endswith(title) and len(word) > len(title):
            stem = word[: -len(title)]
            if (freq.get(word) or 0) >= COMMON_WORD_FREQ or stem in ALLOWED or GRADE.match(stem[:2]):
                return None  # 班主任, 高中同学: an everyday word that happens to start with a surname
            plain = _surname(stem) not in AMBIGUOUS_SURNAMES and stem[:1] not in LINKS
            return stem if plain and (stem in SURNAMES or _surname_led(stem) and 2 <= len(stem) <= 3) else None
    if len(word) == 2 and word[0] in "小老" and word[1] in SURNAMES and word[1] not in AMBIGUOUS_SURNAMES:
        return word  # 小王, 老李
    if after_relation and len(word) == 2 and word[0] in "小阿":
        return word  # 我女朋友 小美
    if after_relation and len(word) == 2 and flag in ("n", "nz", "ns", "j", "z") and not freq.get(word):
        return word  # 我朋友 梓涵: a rare word right after a relation
    if flag not in NAME_TAGS:
        return None
    if after_relation and 2 <= len(word) <= 3:
        return word
    if len(word) == 1:  # a lone surname before a title: 曹 博士
        return word if word in SURNAMES and following in TITLES else None
    if following in TITLES and _surname(word) and len(word) <= 4:
        return word  # 张建国 老师
    known = freq.get(word) or 0
    if not known:
        return word if _name_shaped(word) else None
    tail = word[len(_surname(word)) :]
    fits = (freq.get(tail) or 0) < COMMON_TAIL_FREQ and word[-1] not in NOT_NAME_END
    return word if len(word) == 3 and _surname(word) and known <= 10 and fits else None


def _name_shaped(word: str) -> bool:
    surname = _surname(word)
    if surname:
        return 1 <= len(word) - len(surname) <= 2 and word[-1] not in NOT_NAME_END
    if word[0] == "老":
        return len(word) == 2 and word[1] in SURNAMES and word[1] not in AMBIGUOUS_SURNAMES
    return word[0] in "小阿" and len(word) in (2, 3) and word not in ALLOWED


def _surname(word: str) -> str:
    """The surname a word starts with ('' when none, or when it is far more often an everyday word: 和, 于)."""
    if word[:2] in SURNAMES:
        return word[:2]
    return word[:1] if word[:1] in SURNAMES and word[:1] not in AMBIGUOUS_SURNAMES else ""


def _surname_led(word: str) -> bool:
    return bool(_surname(word))
