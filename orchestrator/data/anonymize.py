"""Anonymisation of counseling text: typed placeholders for every personal identifier.

Two passes. Patterns first, for identifiers with a shape: e-mail, URL,
QQ/WeChat ids, student and ID-card numbers, Chinese phone numbers in every
common writing (separators, spaces, `+86`/`0086`, landlines with area codes,
parentheses), and any other long run of digits. Then person names, found by a
real Chinese segmenter (jieba's part-of-speech tagger marks them `nr`) and by
self-introduction cues (`我叫…`, `大家都叫我…`, `我姓…`). A tagged word counts
as a name only when it reads like one (a common surname or 小/阿 before one
or two characters, not an everyday word of the dictionary), and an allow-list
keeps counseling words that the tagger mistakes for names.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from functools import cache

CJK = r"\u4e00-\u9fff"
SEP = r"[-\s.－—–]?"  # between digit groups: hyphen, space, dot, full-width and long dashes
CUE_SEP = r"\s*(?:[:：是为]|号码是|号是)?\s*"
DIGITS = r"[0-9零〇一二三四五六七八九]"


def _phone() -> re.Pattern:
    country = rf"(?:(?:\+|00)?86{SEP}|\(\+?86\)\s?|（\+?86）\s?)"
    mobile = rf"1[3-9]\d{SEP}\d{{4}}{SEP}\d{{4}}|1[3-9]\d{SEP}\d{{2}}{SEP}\d{{2}}{SEP}\d{{2}}{SEP}\d{{2}}"
    area = r"(?:0\d{2,3}|\(0\d{2,3}\)|（0\d{2,3}）)"
    landline = rf"{area}{SEP}\d{{3,4}}{SEP}\d{{4}}"
    return re.compile(rf"(?<![\dA-Za-z])(?:{country}?(?:{mobile})|{country}?{landline})(?![\d])")


# (kind, pattern): a pattern with a group replaces only the group (the cue word stays: 学号[STUDENT_ID]).
# Order matters: specific ids before phones, phones before the catch-all for long digit runs.
PATTERNS: list[tuple[str, re.Pattern]] = [
    ("EMAIL", re.compile(r"[A-Za-z0-9._%+-]+\s?(?:@|＠|\(at\)|\[at\])\s?[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    (
        "URL",
        re.compile(
            r"(?:https?://|www\.)[^\s，。；、）)\]】\u4e00-\u9fff]+"
            r"|(?<![@\w.])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:com|cn|net|org|edu|gov|io|me|cc|top|xyz|info)"
            r"(?:\.cn)?(?:/[^\s，。；、）)\]】\u4e00-\u9fff]*)?(?![A-Za-z])",
            re.I,
        ),
    ),
    (
        "ID_CARD",
        re.compile(rf"(?<![\dA-Za-z])(\d{{6}}{SEP}(?:19|20)\d{{2}}[01]\d[0-3]\d{SEP}\d{{3}}[\dXx])(?![\dA-Za-z])"),
    ),
    ("QQ", re.compile(rf"(?:QQ|qq|Qq|扣扣|企鹅)(?:号码|号)?{CUE_SEP}(\d[\d\s-]{{3,13}}\d)")),
    (
        "WECHAT",
        re.compile(
            rf"(?:微信|威信|薇信|weixin|wechat|vx|wx|V信|v信)(?:号)?{CUE_SEP}([A-Za-z][-_A-Za-z0-9]{{5,19}})", re.I
        ),
    ),
    (
        "STUDENT_ID",
        re.compile(
            rf"(?:学号|学籍号|工号|准考证号|考号|证件号|卡号|编号){CUE_SEP}([A-Za-z]{{0,3}}\d[\d\s-]{{3,18}}\d)"
        ),
    ),
    ("PHONE", _phone()),
    (
        "PHONE",
        re.compile(
            rf"(?:电话|手机|手机号|号码|座机|联系方式|联系电话|打给我|call){CUE_SEP}"
            rf"((?:\+|00)?{DIGITS}(?:{SEP}{DIGITS}){{4,15}})"
        ),
    ),
    ("NUMBER", re.compile(r"(?<![\d])\d{7,}(?![\d])")),
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
) | {"欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "令狐"}
HONORIFICS = ("先生", "小姐", "女士", "老师", "同学", "阿姨", "叔叔", "医生", "博士", "教授", "老板", "姐", "哥")
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
    "毛绒",
    "艾滋",
}
LINKS = "和与跟同给被让"  # a word glued to a name by the segmenter: 和小伟
# Characters that end words the segmenter calls names but that are not (普通班, 花园里, 施暴者).
NOT_NAME_END = set("里班声者化们性度式期时后前中上下内外间边绒家人生女男子儿")
GRADE = re.compile(r"^(?:[高初][一二三]|[大研][一二三四])$")
NAME_CUES = re.compile(
    rf"(?:我叫|我的名字(?:是|叫)|名字叫|名叫|叫做|本人|(?:都|就|可以|大家)叫我|称呼我为?|我的小名是?|小名叫|网名叫?)"
    rf"\s*([{CJK}]{{2,3}})(?=[，,。.！!？?\s；;、：:]|$)"
)
RELATIONS = (
    "同桌|室友|舍友|同学|朋友|好友|闺蜜|男朋友|女朋友|男友|女友|前任|老公|老婆|丈夫|妻子|儿子|女儿|弟弟|妹妹|哥哥|姐姐"
    "|表哥|表姐|表弟|表妹|堂哥|堂姐|同事|领导|上司|老师|班主任|辅导员|邻居|孩子|妈妈|爸爸|母亲|父亲"
)
_SURNAME_LED = (
    "(?:"
    + "|".join(sorted((n for n in SURNAMES if len(n) == 2), key=len))
    + f"|[{''.join(sorted(n for n in SURNAMES if len(n) == 1))}]|[小阿])"
)
RELATION_CUE = re.compile(rf"(?:{RELATIONS})(?:的名字)?(?:叫|名叫|叫做)({_SURNAME_LED}[{CJK}]{{1,2}})")
SURNAME_CUE = re.compile(rf"(?:我|他|她|对方)姓([{CJK}])(?![{CJK}]{{0,1}}[的了])")
NAME_TAGS = ("nr", "nrfg", "nrt")
GIVEN_FLAGS = (*NAME_TAGS, "nz", "z", "a", "ag", "ng", "an", "j")  # tags the segmenter gives given names
# Tags a surname standing alone gets (赵/nr, 孙/zg, 何/r, 黄/a); a preposition or measure word is not one.
SURNAME_FLAGS = ("nr", "nrfg", "nrt", "zg", "ng", "a", "r", "n", "nz")
# Surnames that are far more often everyday words, never joined to the token after them: 这段/困惑, 那/阿姨.
AMBIGUOUS_SURNAMES = set("时那师和于由向段来都能可全国信元万成其第次些个很也又把被让给跟同")
COMMON_GIVEN_FREQ = 200
COMMON_TAIL_FREQ = 300  # a dictionary "name" whose given-name part is an everyday word (原以为, 祝你们) is not one
COMMON_WORD_FREQ = 100  # jieba dictionary frequency from which a tagged word is an everyday word, not a name


def anonymize(text: str, counts: Counter | None = None) -> str:
    """Replace personal details with typed placeholders ([PHONE], [NAME], ...)."""
    for kind, pattern in PATTERNS:
        text = pattern.sub(lambda m, kind=kind: _swap(m, kind, counts), text)
    text = NAME_CUES.sub(lambda m: _swap(m, "NAME", counts), text)
    text = RELATION_CUE.sub(lambda m: _swap(m, "NAME", counts), text)
    text = SURNAME_CUE.sub(lambda m: _swap(m, "NAME", counts), text)
    return _tagged_names(text, counts)


def _swap(match: re.Match, kind: str, counts: Counter | None) -> str:
    if counts is not None:
        counts[kind] += 1
    if not match.groups():
        return f"[{kind}]"
    start, end = match.span(1)
    whole = match.start()
    return match.group(0)[: start - whole] + f"[{kind}]" + match.group(0)[end - whole :]


@cache
def _tagger() -> tuple:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    jieba.dt.check_initialized()
    return jieba.posseg.dt, jieba.dt.FREQ


def _tagged_names(text: str, counts: Counter | None) -> str:
    """Person names the segmenter tags, honorifics kept (`[NAME]先生`)."""
    if not re.search(rf"[{CJK}]", text):
        return text
    tagger, freq = _tagger()
    words = _join_split_names([(p.word, p.flag) for p in tagger.cut(text)], freq)
    out = []
    for i, (word, flag) in enumerate(words):
        following = words[i + 1][0] if i + 1 < len(words) else ""
        lead = ""
        if len(word) > 2 and word[0] in LINKS and _name_part(word[1:], flag, following, freq) == word[1:]:
            lead, word = word[0], word[1:]  # 和小伟: the segmenter glued a conjunction to the name
        name = _name_part(word, flag, following, freq)
        if name is None:
            out.append(lead + word)
            continue
        if counts is not None:
            counts["NAME"] += 1
        out.append(lead + "[NAME]" + word[len(name) :])
    return "".join(out)


def _join_split_names(words: list[tuple[str, str]], freq: dict) -> list[tuple[str, str]]:
    """Rejoin names the segmenter cut in two: 赵/婷婷, 何/俊杰, 黄/老师, 朱子/轩, 诸葛/明说."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word, flag = words[i]
        nxt, nxt_flag = words[i + 1] if i + 1 < len(words) else ("", "")
        lone = len(word) == 1 and word in SURNAMES and word not in AMBIGUOUS_SURNAMES and flag in SURNAME_FLAGS
        if lone and (_given_name(nxt, nxt_flag, freq) or nxt in HONORIFICS):
            out.append((word + nxt, "nr"))
            i += 2
        elif len(word) == 2 and word in SURNAMES and re.match(rf"[{CJK}]", nxt):
            given, taken = _compound_given(words, i + 1, freq)
            out.append((word + given, "nr"))
            out += [(rest, "x") for rest in [words[i + taken][0][len(given) :]] if rest] if taken else []
            i += 1 + max(taken, 1)
        elif (
            flag in NAME_TAGS
            and len(word) == 2
            and _surname(word)
            and word not in ALLOWED
            and len(nxt) == 1
            and nxt_flag in NAME_TAGS
        ):
            out.append((word + nxt, "nr"))
            i += 2
        else:
            out.append((word, flag))
            i += 1
    return out


def _compound_given(words: list[tuple[str, str]], start: int, freq: dict) -> tuple[str, int]:
    """(given name, tokens it spans) after a compound surname: a name-like token, or up to two single characters."""
    word, flag = words[start]
    if _given_name(word, flag, freq) or len(word) > 1:
        return (word, 1) if _given_name(word, flag, freq) else (word[0], 1)
    given, taken = word, 1
    if start + 1 < len(words):
        second, second_flag = words[start + 1]
        if len(second) == 1 and re.match(rf"[{CJK}]", second) and second_flag[:1] not in "xupcd":
            given, taken = given + second, 2
    return given, taken


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


def _name_part(word: str, flag: str, following: str, freq: dict) -> str | None:
    """The part of a tagged word that is a person's name (an honorific after it stays), else None.

    Words the segmenter found outside its dictionary are names when shaped like one (surname first, or
    小/阿 before one or two characters); dictionary words it tags as names are mostly set phrases
    (幸福快乐, 祝你们, 普通班), so of those only surname + title, 某, or a rare surname + unknown given name pass.
    """
    if flag not in NAME_TAGS or word in ALLOWED or word[1:] in ALLOWED or GRADE.match(word[:2]):
        return None
    if len(word) == 1:  # a lone surname before a title: 曹 博士
        return word if word in SURNAMES and following.startswith(HONORIFICS) else None
    if following.startswith(HONORIFICS) and _surname(word) and len(word) <= 4:
        return word  # 张建国 老师
    for title in (*HONORIFICS, "某"):
        if word.endswith(title) and len(word) > len(title):
            stem = word[: -len(title)]
            return stem if stem in SURNAMES or _surname_led(stem) and len(stem) <= 3 else None
    known = freq.get(word) or 0
    if not known:
        return word if _name_shaped(word) else None
    tail = word[len(_surname(word)) :]
    if (
        len(word) == 3
        and _surname(word)
        and known <= 10
        and (freq.get(tail) or 0) < COMMON_TAIL_FREQ
        and word[-1] not in NOT_NAME_END
    ):
        return word
    return None


def _name_shaped(word: str) -> bool:
    surname = _surname(word)
    if surname:
        return 1 <= len(word) - len(surname) <= 2 and word[-1] not in NOT_NAME_END
    return word[0] in "小阿" and len(word) in (2, 3) and word not in ALLOWED


def _surname(word: str) -> str:
    """The surname a word starts with ('' when none)."""
    if word[:2] in SURNAMES:
        return word[:2]
    return word[:1] if word[:1] in SURNAMES else ""


def _surname_led(word: str) -> bool:
    return bool(_surname(word))
